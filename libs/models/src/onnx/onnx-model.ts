/**
 * An ONNX model as the rewrites see it: the graph's nodes, initializers, inputs and outputs, decoded from the
 * protobuf without reading any weights. A weight's bytes are read only when a rewrite asks for them, and a saved
 * model either keeps each weight where it was (inline, or in the source's external data file) or streams it into
 * a new external data file. So a 30 GiB model is rewritten in about the memory of its largest tensor, and a model
 * over protobuf's 2 GiB limit never has to fit in one message.
 *
 * Field numbers are those of onnx.proto; fields this code does not touch are re-encoded byte for byte.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import {
  asMessage,
  bytesField,
  decode,
  encode,
  Field,
  first,
  firstString,
  Message,
  messageField,
  packedVarints,
  str,
  strings,
  varintField,
  WireType,
} from './protobuf';
import { halfToFloat } from './float16';

// ModelProto
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
// GraphProto
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
// NodeProto
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP = 4;
const NODE_ATTRIBUTE = 5;
const NODE_DOMAIN = 7;
// AttributeProto
const ATTR_NAME = 1;
const ATTR_F = 2;
const ATTR_I = 3;
const ATTR_T = 5;
const ATTR_INTS = 8;
const ATTR_TYPE = 20;
const ATTR_TYPE_FLOAT = 1;
const ATTR_TYPE_INT = 2;
const ATTR_TYPE_TENSOR = 4;
const ATTR_TYPE_INTS = 7;
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

/** TensorProto.DataType values this code reads or writes. */
export enum TensorType {
  Float = 1,
  Uint8 = 2,
  Int8 = 3,
  Int32 = 6,
  Int64 = 7,
  Bool = 9,
  Float16 = 10,
  Double = 11,
  BFloat16 = 16,
}

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

/** The domain of ONNX Runtime's contrib operators (MatMulNBits, ...). */
export const MS_DOMAIN = 'com.microsoft';

export class OnnxNode {
  // A node's type and tensor names are decoded once, for the many lookups of a rewrite; a node is never changed
  // in place (a rewrite builds a new one).
  readonly opType: string;
  readonly domain: string;
  readonly inputs: string[];
  readonly outputs: string[];

  constructor(readonly fields: Message) {
    this.opType = firstString(fields, NODE_OP) ?? '';
    this.domain = firstString(fields, NODE_DOMAIN) ?? '';
    this.inputs = strings(fields, NODE_INPUT);
    this.outputs = strings(fields, NODE_OUTPUT);
  }

  get name(): string {
    return firstString(this.fields, NODE_NAME) ?? '';
  }

  attribute(name: string): Message | undefined {
    for (const f of this.fields) {
      if (f.no !== NODE_ATTRIBUTE) continue;
      const attr = asMessage(f);
      if (firstString(attr, ATTR_NAME) === name) return attr;
    }
    return undefined;
  }

  intsAttribute(name: string): number[] | undefined {
    const attr = this.attribute(name);
    if (!attr) return undefined;
    const out: number[] = [];
    for (const f of attr) {
      if (f.no !== ATTR_INTS) continue;
      if (f.wt === WireType.Varint) out.push(Number(BigInt.asIntN(64, f.value as bigint)));
      else for (const v of packedVarints(f.value as Uint8Array)) out.push(Number(BigInt.asIntN(64, v)));
    }
    return out;
  }

  intAttribute(name: string): number | undefined {
    const attr = this.attribute(name);
    const f = attr && first(attr, ATTR_I);
    return f ? Number(BigInt.asIntN(64, f.value as bigint)) : undefined;
  }

  /** A tensor-valued attribute (a Constant's `value`), as a TensorProto message. */
  tensorAttribute(name: string): Message | undefined {
    const attr = this.attribute(name);
    const f = attr && first(attr, ATTR_T);
    return f ? asMessage(f) : undefined;
  }

  static make(
    op: string,
    inputs: string[],
    outputs: string[],
    name: string,
    attributes: Field[] = [],
    domain = '',
  ): OnnxNode {
    return new OnnxNode([
      ...inputs.map((i) => bytesField(NODE_INPUT, i)),
      ...outputs.map((o) => bytesField(NODE_OUTPUT, o)),
      bytesField(NODE_NAME, name),
      bytesField(NODE_OP, op),
      ...attributes,
      ...(domain ? [bytesField(NODE_DOMAIN, domain)] : []),
    ]);
  }

  /** The same node (type, attributes, domain) reading and writing other tensors. */
  rewired(inputs: string[], outputs: string[]): OnnxNode {
    const rest = this.fields.filter((f) => f.no !== NODE_INPUT && f.no !== NODE_OUTPUT);
    return new OnnxNode([
      ...inputs.map((i) => bytesField(NODE_INPUT, i)),
      ...outputs.map((o) => bytesField(NODE_OUTPUT, o)),
      ...rest,
    ]);
  }

  /** The same node with attribute `name` set to `attribute` (replaced, or added). */
  withAttribute(name: string, attribute: Field): OnnxNode {
    const kept = this.fields.filter((f) => f.no !== NODE_ATTRIBUTE || firstString(asMessage(f), ATTR_NAME) !== name);
    return new OnnxNode([...kept, attribute]);
  }

  withIntAttribute(name: string, value: number): OnnxNode {
    return this.withAttribute(name, intAttr(name, value));
  }
}

export function intAttr(name: string, value: number): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    varintField(ATTR_I, value),
    varintField(ATTR_TYPE, ATTR_TYPE_INT),
  ]);
}

export function floatAttr(name: string, value: number): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    { no: ATTR_F, wt: WireType.Fixed32, value: new Uint8Array(Float32Array.of(value).buffer) },
    varintField(ATTR_TYPE, ATTR_TYPE_FLOAT),
  ]);
}

export function intsAttr(name: string, values: number[]): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    ...values.map((v) => varintField(ATTR_INTS, v)),
    varintField(ATTR_TYPE, ATTR_TYPE_INTS),
  ]);
}

export function tensorAttr(name: string, tensor: Message): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    messageField(ATTR_T, tensor),
    varintField(ATTR_TYPE, ATTR_TYPE_TENSOR),
  ]);
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
  toProto(external: { location: string; offset: number; length: number } | null): Message {
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

function readRange(file: string, offset: number, length: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new Error(`${file}: ends before byte ${offset + length} (a tensor's external data)`);
      done += n;
    }
    return out;
  } finally {
    closeSync(fd);
  }
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
  if (type === TensorType.Int32) return new Uint8Array(Int32Array.from(values, (v) => Number(BigInt.asIntN(32, v))).buffer);
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
    throw new Error(`initializer ${name}: external data location ${JSON.stringify(location)} is outside the model directory`);
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

/** A tensor's value info: its name, element type and dims (numbers, or names of dynamic axes). */
export interface ValueInfo {
  name: string;
  type: number;
  dims: (number | string)[] | null;
}

function readValueInfo(message: Message): ValueInfo {
  const name = firstString(message, 1) ?? '';
  const typeField = first(message, 2);
  const tensorField = typeField && first(asMessage(typeField), 1);
  if (!tensorField) return { name, type: 0, dims: null };
  const tensor = asMessage(tensorField);
  const type = Number(first(tensor, 1)?.value ?? 0n);
  const shapeField = first(tensor, 2);
  if (!shapeField) return { name, type, dims: null };
  const dims = asMessage(shapeField)
    .filter((f) => f.no === 1)
    .map((d) => {
      const dim = asMessage(d);
      const value = first(dim, 1);
      if (value) return Number(value.value);
      const param = first(dim, 2);
      return param ? str(param) : '?';
    });
  return { name, type, dims };
}

export function valueInfoMessage(info: ValueInfo): Message {
  const tensorType: Message = [varintField(1, info.type)];
  if (info.dims) {
    const shape: Message = info.dims.map((d) =>
      messageField(1, [typeof d === 'number' ? varintField(1, d) : bytesField(2, d)]),
    );
    tensorType.push(messageField(2, shape));
  }
  return [bytesField(1, info.name), messageField(2, [messageField(1, tensorType)])];
}

/** Where `OnnxModel.save` writes the graph and the data it moves out of the protobuf. */
export interface SaveTarget {
  /** The graph file to write. */
  graphFile: string;
  /**
   * The external data file (in the graph's directory) for every tensor that is not kept where it is; null keeps
   * each tensor where it was, and writes computed tensors inline.
   */
  dataFile: string | null;
  /**
   * Which tensors go into `dataFile`. Default: the computed ones, and every external one (an ONNX Runtime session
   * resolves all external data against one directory, so a graph cannot point into two).
   */
  moveToData?: (tensor: OnnxTensor) => boolean;
  /** Called after each tensor is written to the data file, for progress on long saves. */
  onTensor?: (written: number, total: number) => void;
}

/** Tensors of at least this size start at a page boundary in a data file, so that they can be mapped in place. */
const PAGE_ALIGN_FROM = 1 << 20;

export class OnnxModel {
  private constructor(
    /** The ModelProto's fields other than the graph. */
    private readonly modelFields: Message,
    /** The GraphProto's fields this code does not rewrite (its name, doc string, ...). */
    private readonly graphFields: Message,
    public nodes: OnnxNode[],
    public initializers: Map<string, OnnxTensor>,
    public inputs: ValueInfo[],
    public outputs: ValueInfo[],
    /** The graph's value_info, kept verbatim where the rewrite leaves a tensor alone. */
    public valueInfo: Message[],
    /** The directory external data locations are relative to. */
    readonly dir: string,
  ) {}

  static read(graphFile: string, bytes: Uint8Array, dir: string): OnnxModel {
    const model = decode(bytes);
    const graphField = first(model, MODEL_GRAPH);
    if (!graphField) throw new Error(`${graphFile}: no graph`);
    const graph = asMessage(graphField);
    const initializers = new Map<string, OnnxTensor>();
    for (const f of graph) {
      if (f.no !== GRAPH_INITIALIZER) continue;
      const tensor = tensorFromProto(asMessage(f), dir);
      initializers.set(tensor.name, tensor);
    }
    return new OnnxModel(
      model.filter((f) => f.no !== MODEL_GRAPH),
      graph.filter((f) => ![GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_VALUE_INFO].includes(f.no)),
      graph.filter((f) => f.no === GRAPH_NODE).map((f) => new OnnxNode(asMessage(f))),
      initializers,
      graph.filter((f) => f.no === GRAPH_INPUT).map((f) => readValueInfo(asMessage(f))),
      graph.filter((f) => f.no === GRAPH_OUTPUT).map((f) => readValueInfo(asMessage(f))),
      graph.filter((f) => f.no === GRAPH_VALUE_INFO).map((f) => asMessage(f)),
      dir,
    );
  }

  /** A new model of one graph (for tests and tools), importing `opsets` (domain → version). */
  static create(graph: {
    nodes: OnnxNode[];
    initializers: OnnxTensor[];
    inputs: ValueInfo[];
    outputs: ValueInfo[];
    opsets: Record<string, number>;
    dir?: string;
  }): OnnxModel {
    const IR_VERSION = 8;
    const modelFields: Message = [varintField(1, IR_VERSION)];
    for (const [domain, version] of Object.entries(graph.opsets)) {
      modelFields.push(messageField(MODEL_OPSET, [bytesField(1, domain), varintField(2, version)]));
    }
    return new OnnxModel(
      modelFields,
      [bytesField(2, 'graph')],
      graph.nodes,
      new Map(graph.initializers.map((t) => [t.name, t])),
      graph.inputs,
      graph.outputs,
      [],
      graph.dir ?? '.',
    );
  }

  /** A copy whose node, initializer and value lists a rewrite may change; the tensors themselves are shared. */
  clone(): OnnxModel {
    return new OnnxModel(
      this.modelFields,
      this.graphFields,
      [...this.nodes],
      new Map(this.initializers),
      [...this.inputs],
      [...this.outputs],
      [...this.valueInfo],
      this.dir,
    );
  }

  /** The version of an operator set the model imports (`''` is the default ONNX domain); 0 when absent. */
  opsetVersion(domain = ''): number {
    for (const f of this.modelFields) {
      if (f.no !== MODEL_OPSET) continue;
      const opset = asMessage(f);
      if ((firstString(opset, 1) ?? '') === domain) return Number(first(opset, 2)?.value ?? 0n);
    }
    return 0;
  }

  /** Adds an operator set import if the model lacks it. */
  importOpset(domain: string, version: number): void {
    if (this.opsetVersion(domain) > 0) return;
    this.modelFields.push(messageField(MODEL_OPSET, [bytesField(1, domain), varintField(2, version)]));
  }

  /** Bytes of every initializer's data, wherever it is held. */
  get weightBytes(): number {
    let total = 0;
    for (const t of this.initializers.values()) total += t.byteLength;
    return total;
  }

  /** The model as one protobuf: every tensor inline or where it already is (no data file is written). */
  toBytes(): Uint8Array {
    return encode(this.message((t) => this.keptLocation(t)));
  }

  /**
   * Writes the graph, and the tensors `moveToData` selects into `dataFile`, streaming one tensor at a time: the
   * memory used is about the largest tensor, whatever the model's size.
   */
  save(target: SaveTarget): void {
    const placement = new Map<string, { location: string; offset: number; length: number } | null>();
    if (target.dataFile) {
      const move = target.moveToData ?? ((t: OnnxTensor) => t.source.kind !== 'inline');
      const moving = [...this.initializers.values()].filter(move);
      // a location relative to the graph's directory, and inside it, as ONNX Runtime requires
      const dataLocation = relative(dirname(target.graphFile), target.dataFile);
      if (dataLocation.startsWith('..') || isAbsolute(dataLocation)) {
        throw new Error(`${target.dataFile}: external data must be in the graph's directory or below it`);
      }
      const fd = openSync(target.dataFile, 'w');
      try {
        let offset = 0;
        let written = 0;
        for (const tensor of moving) {
          const align = tensor.byteLength >= PAGE_ALIGN_FROM ? 4096 : 64;
          const padded = Math.ceil(offset / align) * align;
          if (padded > offset) writeSync(fd, new Uint8Array(padded - offset), 0, padded - offset, offset);
          offset = padded;
          const bytes = tensor.read();
          if (bytes.length !== tensor.byteLength) {
            throw new Error(`initializer ${tensor.name}: ${bytes.length} bytes where ${tensor.byteLength} were expected`);
          }
          writeAll(fd, bytes, offset);
          placement.set(tensor.name, { location: dataLocation, offset, length: bytes.length });
          offset += bytes.length;
          target.onTensor?.(++written, moving.length);
        }
        if (fstatSync(fd).size !== offset) throw new Error(`${target.dataFile}: short write`);
      } finally {
        closeSync(fd);
      }
    }
    const bytes = encode(this.message((t) => (placement.has(t.name) ? placement.get(t.name)! : this.keptLocation(t))));
    const fd = openSync(target.graphFile, 'w');
    try {
      writeAll(fd, bytes, 0);
    } finally {
      closeSync(fd);
    }
  }

  /** Where a tensor stays when it is not moved: its external file (relative to `dir`) or inline. */
  private keptLocation(tensor: OnnxTensor): { location: string; offset: number; length: number } | null {
    if (tensor.source.kind !== 'external') return null;
    const { file, offset, length } = tensor.source;
    if (!file.startsWith(this.dir + '/')) throw new Error(`initializer ${tensor.name}: its data is outside ${this.dir}`);
    return { location: file.slice(this.dir.length + 1), offset, length };
  }

  private message(locate: (t: OnnxTensor) => { location: string; offset: number; length: number } | null): Message {
    const graph: Message = [...this.graphFields];
    for (const n of this.nodes) graph.push(messageField(GRAPH_NODE, n.fields));
    for (const t of this.initializers.values()) graph.push(messageField(GRAPH_INITIALIZER, t.toProto(locate(t))));
    for (const i of this.inputs) graph.push(messageField(GRAPH_INPUT, valueInfoMessage(i)));
    for (const o of this.outputs) graph.push(messageField(GRAPH_OUTPUT, valueInfoMessage(o)));
    for (const v of this.valueInfo) graph.push(messageField(GRAPH_VALUE_INFO, v));
    return [...this.modelFields, messageField(MODEL_GRAPH, graph)];
  }
}

function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
