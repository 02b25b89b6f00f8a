/**
 * One initializer (TensorProto) of an ONNX graph: its header decoded, its data left where it is (inline, in an
 * external data file, or computed by a rewrite) until read; and the element types this code knows.
 */
import { join } from 'node:path';
import { halfToFloat } from './float16';
import { readRange, type DataLocation } from './external-data';
import {
  asMessage,
  bytesField,
  first,
  firstString,
  Message,
  messageField,
  packedVarints,
  varintField,
  WireType,
} from './protobuf';

// TensorProto
const TENSOR_DIMS = 1;
const TENSOR_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_INT32_DATA = 5;
const TENSOR_INT64_DATA = 7;
const TENSOR_NAME = 8;
const TENSOR_RAW = 9;
const TENSOR_EXTERNAL = 13;
const TENSOR_LOCATION = 14;
const LOCATION_EXTERNAL = 1;

/**
 * TensorProto.DataType values this code reads or writes. Named numbers rather than an enum: a type read from a
 * file is any number, and is compared with these as one.
 */
export const TensorType = {
  Float: 1,
  Uint8: 2,
  Int8: 3,
  Int32: 6,
  Int64: 7,
  Bool: 9,
  Float16: 10,
  Double: 11,
  BFloat16: 16,
} as const;
export type TensorType = (typeof TensorType)[keyof typeof TensorType];

const ELEMENT_BYTES: Record<number, number> = {
  [TensorType.Float]: 4,
  [TensorType.Uint8]: 1,
  [TensorType.Int8]: 1,
  [TensorType.Int32]: 4,
  [TensorType.Int64]: 8,
  [TensorType.Bool]: 1,
  [TensorType.Float16]: 2,
  [TensorType.Double]: 8,
  [TensorType.BFloat16]: 2,
};

export function elementBytes(type: number): number {
  const bytes = ELEMENT_BYTES[type];
  if (bytes === undefined) throw new Error(`tensor element type ${type} is not supported`);
  return bytes;
}

/** Where an initializer's bytes are: in the protobuf, in an external file, or made by a rewrite on demand. */
export type TensorSource =
  | { kind: 'inline' }
  | { kind: 'external'; file: string; offset: number; length: number }
  | { kind: 'computed'; length: number; produce: () => Uint8Array };

/** One initializer. Its header (name, type, dims) is decoded; its data stays where it is until read. */
export class OnnxTensor {
  constructor(
    readonly name: string,
    readonly type: number,
    readonly dims: number[],
    readonly source: TensorSource,
    /** The TensorProto as decoded (for inline data), or null for a tensor a rewrite made. */
    readonly proto: Message | null,
  ) {}

  get elements(): number {
    return this.dims.reduce((n, d) => n * d, 1);
  }

  /** The bytes the tensor's data takes, wherever it is. */
  get byteLength(): number {
    if (this.source.kind !== 'inline') return this.source.length;
    const raw = first(this.proto!, TENSOR_RAW)?.value as Uint8Array | undefined;
    return raw ? raw.length : this.elements * (ELEMENT_BYTES[this.type] ?? 0);
  }

  /** A tensor a rewrite made, whose bytes `produce` computes when the model is saved. */
  static computed(name: string, type: number, dims: number[], length: number, produce: () => Uint8Array): OnnxTensor {
    return new OnnxTensor(name, type, dims, { kind: 'computed', length, produce }, null);
  }

  /** A small tensor held in the graph itself. */
  static inline(name: string, type: number, dims: number[], raw: Uint8Array): OnnxTensor {
    const proto: Message = [
      ...dims.map((d) => varintField(TENSOR_DIMS, d)),
      varintField(TENSOR_TYPE, type),
      bytesField(TENSOR_NAME, name),
      bytesField(TENSOR_RAW, raw),
    ];
    return new OnnxTensor(name, type, dims, { kind: 'inline' }, proto);
  }

  /** The same tensor with its bytes held in the graph (read now). */
  inlined(): OnnxTensor {
    return this.source.kind === 'inline' ? this : OnnxTensor.inline(this.name, this.type, this.dims, this.read());
  }

  /** The tensor's raw little-endian bytes (read from its file when external). */
  read(): Uint8Array {
    switch (this.source.kind) {
      case 'computed':
        return this.source.produce();
      case 'external':
        return readRange(this.source.file, this.source.offset, this.source.length);
      case 'inline':
        return inlineBytes(this.proto!, this.type, this.elements);
    }
  }

  /** The TensorProto to save: data inline, or at `external` in a file. */
  toProto(external: DataLocation | null): Message {
    const header: Message = [
      ...this.dims.map((d) => varintField(TENSOR_DIMS, d)),
      varintField(TENSOR_TYPE, this.type),
      bytesField(TENSOR_NAME, this.name),
    ];
    if (external) {
      return [
        ...header,
        ...[
          ['location', external.location],
          ['offset', String(external.offset)],
          ['length', String(external.length)],
        ].map(([k, v]) => messageField(TENSOR_EXTERNAL, [bytesField(1, k), bytesField(2, v)])),
        varintField(TENSOR_LOCATION, LOCATION_EXTERNAL),
      ];
    }
    if (this.source.kind === 'inline') return this.proto!;
    return [...header, bytesField(TENSOR_RAW, this.read())];
  }
}

/**
 * A Float32Array or Uint16Array over raw little-endian bytes: a view where the bytes are aligned, else a copy.
 * (Node's `Buffer.slice` is a view, not a copy, so it cannot realign.)
 */
export function floatsView(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : new Uint8Array(bytes);
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 2);
}

export function halfsView(bytes: Uint8Array): Uint16Array {
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : new Uint8Array(bytes);
  return new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.byteLength >> 1);
}

/** An inline tensor's data as raw little-endian bytes, from `raw_data` or the typed repeated fields. */
function inlineBytes(proto: Message, type: number, elements: number): Uint8Array {
  const raw = first(proto, TENSOR_RAW)?.value as Uint8Array | undefined;
  if (raw) return raw;
  if (type === TensorType.Float) {
    const out = new Float32Array(elements);
    let i = 0;
    for (const f of proto) {
      if (f.no !== TENSOR_FLOAT_DATA) continue;
      const bytes = f.value as Uint8Array;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let p = 0; p + 4 <= bytes.length; p += 4) out[i++] = view.getFloat32(p, true);
    }
    return new Uint8Array(out.buffer);
  }
  const varintNo = type === TensorType.Int64 ? TENSOR_INT64_DATA : TENSOR_INT32_DATA;
  const values: bigint[] = [];
  for (const f of proto) {
    if (f.no !== varintNo) continue;
    if (f.wt === WireType.Varint) values.push(f.value as bigint);
    else values.push(...packedVarints(f.value as Uint8Array));
  }
  if (type === TensorType.Int64) return new Uint8Array(BigInt64Array.from(values, (v) => BigInt.asIntN(64, v)).buffer);
  if (type === TensorType.Int32)
    return new Uint8Array(Int32Array.from(values, (v) => Number(BigInt.asIntN(32, v))).buffer);
  // int32_data also carries float16, bool, int8 and uint8, one element per varint
  const bytes = elementBytes(type);
  if (bytes === 1) return Uint8Array.from(values, (v) => Number(v));
  if (bytes === 2) return new Uint8Array(Uint16Array.from(values, (v) => Number(v)).buffer);
  throw new Error(`an inline tensor of type ${type} without raw_data is not supported`);
}

/** Reads a TensorProto's header and finds its data; external data is resolved against `dir`. */
export function tensorFromProto(proto: Message, dir: string): OnnxTensor {
  const name = firstString(proto, TENSOR_NAME) ?? '';
  const type = Number(first(proto, TENSOR_TYPE)?.value ?? 0n);
  const dims: number[] = [];
  for (const f of proto) {
    if (f.no !== TENSOR_DIMS) continue;
    if (f.wt === WireType.Varint) dims.push(Number(BigInt.asIntN(64, f.value as bigint)));
    else for (const v of packedVarints(f.value as Uint8Array)) dims.push(Number(BigInt.asIntN(64, v)));
  }
  if (Number(first(proto, TENSOR_LOCATION)?.value ?? 0n) !== LOCATION_EXTERNAL) {
    return new OnnxTensor(name, type, dims, { kind: 'inline' }, proto);
  }
  const entries = new Map<string, string>();
  for (const f of proto) {
    if (f.no !== TENSOR_EXTERNAL) continue;
    const kv = asMessage(f);
    entries.set(firstString(kv, 1) ?? '', firstString(kv, 2) ?? '');
  }
  const location = entries.get('location');
  // ONNX Runtime refuses data outside the model's directory; so does this reader.
  if (!location || location.includes('..') || location.startsWith('/')) {
    throw new Error(
      `initializer ${name}: external data location ${JSON.stringify(location)} is outside the model directory`,
    );
  }
  const elements = dims.reduce((n, d) => n * d, 1);
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : elements * elementBytes(type);
  return new OnnxTensor(name, type, dims, { kind: 'external', file: join(dir, location), offset, length }, null);
}

/** A float scalar held by a TensorProto (raw or float_data), or undefined. */
export function scalarOfTensor(tensor: Message): number | undefined {
  const dims = tensor.filter((f) => f.no === TENSOR_DIMS);
  if (dims.some((d) => d.wt === WireType.Varint && d.value !== 1n)) return undefined;
  const type = Number(first(tensor, TENSOR_TYPE)?.value ?? 0n);
  const raw = (first(tensor, TENSOR_RAW)?.value ?? first(tensor, TENSOR_FLOAT_DATA)?.value) as Uint8Array | undefined;
  if (!raw) {
    // float16 scalars without raw_data are held in int32_data
    if (type !== TensorType.Float16) return undefined;
    const f = first(tensor, TENSOR_INT32_DATA);
    if (!f) return undefined;
    const bits = f.wt === WireType.Varint ? Number(f.value) : Number(packedVarints(f.value as Uint8Array)[0]);
    return halfToFloat(bits);
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (type === TensorType.Float && raw.length === 4) return view.getFloat32(0, true);
  if (type === TensorType.Float16 && raw.length === 2) return halfToFloat(view.getUint16(0, true));
  return undefined;
}
