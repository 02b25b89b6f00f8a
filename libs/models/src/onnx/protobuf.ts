/**
 * A small Protocol Buffers wire-format codec: enough to read and rewrite an ONNX graph without a generated schema.
 * A message decodes to its fields in order; fields this code does not touch are re-encoded byte for byte, so a
 * rewrite keeps everything it does not understand.
 */

export const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  Bytes = 2,
  Fixed32 = 5,
}

export interface Field {
  no: number;
  wt: WireType;
  /** Varint: the value as a bigint. Fixed32/Fixed64/Bytes: the raw bytes. */
  value: bigint | Uint8Array;
  /** A nested message not yet encoded (a Bytes field built by `messageField`); `value` is then empty. */
  nested?: Message;
}

export type Message = Field[];

function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error('varint too long');
  }
}

/** The values of a packed repeated varint field. */
export function packedVarints(buf: Uint8Array): bigint[] {
  const values: bigint[] = [];
  for (let pos = 0; pos < buf.length;) {
    const [value, next] = readVarint(buf, pos);
    values.push(value);
    pos = next;
  }
  return values;
}

export function decode(buf: Uint8Array): Message {
  const fields: Message = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    pos = afterKey;
    const no = Number(key >> 3n);
    const wt = Number(key & 7n) as WireType;
    switch (wt) {
      case WireType.Varint: {
        const [value, next] = readVarint(buf, pos);
        fields.push({ no, wt, value });
        pos = next;
        break;
      }
      case WireType.Fixed64:
        fields.push({ no, wt, value: buf.subarray(pos, pos + 8) });
        pos += 8;
        break;
      case WireType.Fixed32:
        fields.push({ no, wt, value: buf.subarray(pos, pos + 4) });
        pos += 4;
        break;
      case WireType.Bytes: {
        const [length, start] = readVarint(buf, pos);
        const end = start + Number(length);
        if (end > buf.length) throw new Error('truncated length-delimited field');
        fields.push({ no, wt, value: buf.subarray(start, end) });
        pos = end;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wt as number}`);
    }
  }
  return fields;
}

function varintLength(value: bigint): number {
  let v = BigInt.asUintN(64, value);
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function smallVarintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

function writeVarint(buf: Uint8Array, pos: number, value: bigint): number {
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    buf[pos++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  buf[pos++] = Number(v);
  return pos;
}

function writeSmallVarint(buf: Uint8Array, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/** Encoded sizes of the nested messages of one `encode` call. */
type Sizes = Map<Message, number>;

function messageSize(message: Message, sizes: Sizes): number {
  let total = 0;
  for (const field of message) {
    total += smallVarintLength((field.no << 3) | field.wt);
    if (field.nested) {
      const n = messageSize(field.nested, sizes);
      sizes.set(field.nested, n);
      total += smallVarintLength(n) + n;
    } else if (field.wt === WireType.Varint) total += varintLength(field.value as bigint);
    else {
      const length = (field.value as Uint8Array).length;
      total += field.wt === WireType.Bytes ? smallVarintLength(length) + length : length;
    }
  }
  return total;
}

function writeMessage(message: Message, buf: Uint8Array, pos: number, sizes: Sizes): number {
  for (const field of message) {
    pos = writeSmallVarint(buf, pos, (field.no << 3) | field.wt);
    if (field.nested) {
      pos = writeSmallVarint(buf, pos, sizes.get(field.nested)!);
      pos = writeMessage(field.nested, buf, pos, sizes);
    } else if (field.wt === WireType.Varint) pos = writeVarint(buf, pos, field.value as bigint);
    else {
      const bytes = field.value as Uint8Array;
      if (field.wt === WireType.Bytes) pos = writeSmallVarint(buf, pos, bytes.length);
      buf.set(bytes, pos);
      pos += bytes.length;
    }
  }
  return pos;
}

/** Encodes in two passes (sizes, then one buffer): every byte, the weights included, is copied once. */
export function encode(message: Message): Uint8Array {
  const sizes: Sizes = new Map();
  const out = new Uint8Array(messageSize(message, sizes));
  writeMessage(message, out, 0, sizes);
  return out;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A length-delimited field read as a message (built or decoded). */
export function asMessage(field: Field): Message {
  return field.nested ?? decode(field.value as Uint8Array);
}

export function str(field: Field): string {
  return fromUtf8.decode(field.value as Uint8Array);
}

export function strings(message: Message, no: number): string[] {
  return message.filter((f) => f.no === no).map(str);
}

export function first(message: Message, no: number): Field | undefined {
  return message.find((f) => f.no === no);
}

export function firstString(message: Message, no: number): string | undefined {
  const f = first(message, no);
  return f ? str(f) : undefined;
}

export function bytesField(no: number, value: Uint8Array | string): Field {
  return { no, wt: WireType.Bytes, value: typeof value === 'string' ? utf8.encode(value) : value };
}

export function varintField(no: number, value: number | bigint): Field {
  return { no, wt: WireType.Varint, value: BigInt(value) };
}

export function messageField(no: number, message: Message): Field {
  return { no, wt: WireType.Bytes, value: EMPTY, nested: message };
}

const EMPTY = new Uint8Array(0);
