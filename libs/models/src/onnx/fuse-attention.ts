/**
 * Rewrites an Optimum decoder export's attention, at load time and in memory, so that it reads a KV cache the
 * caller owns. Standard ONNX operators only.
 *
 * Why: an exported graph concatenates the whole past into a new present every step, repeats each key/value head
 * for every query head (a copy per head), transposes it, and attends over the padded width; and every present
 * crosses the Node binding as a fresh copy. Per step that is several copies of the whole KV cache. The rewritten
 * graph scores the queries against the cached keys (kept transposed, so one MatMul reads them in place) and the
 * new keys, masks each row past its own length, takes one softmax over both, and returns only the new tokens' keys
 * and values, which the caller writes into its cache. Nothing of the cache is copied per step.
 *
 * The rewritten graph's interface:
 * - inputs: `input_ids` and `position_ids` [batch, seq]; `past_key_values.N.key` [batch, kvHeads, headDim,
 *   columns] and `past_key_values.N.value` [batch, kvHeads, columns, headDim], row r's tokens at columns
 *   [0, cache_lengths[r]); `cache_lengths` int64 [batch]; `logits_index` int64 [batch, k]: the positions whose
 *   logits are wanted, as flat indices into [batch × seq];
 * - outputs: `logits` [batch, k, vocab], their `logits_logsumexp`, `logits_argmax` and `logits_max` [batch, k] (so
 *   that a greedy row needs no pass over the vocabulary in JS, and a step of greedy rows need not fetch the logits
 *   at all), and `new_key_values.N.key/value` [batch, kvHeads, seq, headDim].
 * A prefill (empty cache) takes right-padded rows, causal among the new tokens, and usually asks for one position
 * per row: the language-model head over every prompt position is much of a prefill's work.
 *
 * The pattern is matched strictly, per layer: past and new keys concatenated on the sequence axis; keys and values
 * reaching the two attention MatMuls through shape operations only (repeat_kv, transposes); a scalar scale, an
 * additive mask and a Softmax between them; the heads merged by a Transpose and a Reshape after; the logits one
 * MatMul. Anything else (GPT-2's causal `Where`, a sliding window, ALiBi, a float16 cache) leaves the graph as it
 * is, and the caller serves it padded.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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
  strings,
  varintField,
  WireType,
} from './protobuf';

// ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto field numbers (onnx.proto).
const MODEL_GRAPH = 7;
const MODEL_OPSET = 8;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_INPUT = 11;
const GRAPH_OUTPUT = 12;
const GRAPH_VALUE_INFO = 13;
const NODE_INPUT = 1;
const NODE_OUTPUT = 2;
const NODE_NAME = 3;
const NODE_OP = 4;
const NODE_ATTRIBUTE = 5;
const ATTR_NAME = 1;
const ATTR_I = 3;
const ATTR_T = 5;
const ATTR_INTS = 8;
const ATTR_TYPE = 20;
const TENSOR_DIMS = 1;
const TENSOR_TYPE = 2;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_NAME = 8;
const TENSOR_RAW = 9;
const TENSOR_EXTERNAL = 13;
const TENSOR_LOCATION = 14;
const ONNX_FLOAT = 1;
const ONNX_INT64 = 7;

export const CACHE_LENGTHS_INPUT = 'cache_lengths';
export const NEW_KV_PREFIX = 'new_key_values';
export const LOGITS_INDEX_INPUT = 'logits_index';
export const LOGSUMEXP_OUTPUT = 'logits_logsumexp';
export const ARGMAX_OUTPUT = 'logits_argmax';
export const LOGITS_MAX_OUTPUT = 'logits_max';

export interface FuseOptions {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
}

export type FuseResult = { fused: true; bytes: Uint8Array } | { fused: false; reason: string };

class Node {
  // A node is never changed once built: its type and tensor names are decoded once, for the many lookups below.
  readonly opType: string;
  readonly inputs: string[];
  readonly outputs: string[];

  constructor(readonly fields: Message) {
    this.opType = firstString(fields, NODE_OP) ?? '';
    this.inputs = strings(fields, NODE_INPUT);
    this.outputs = strings(fields, NODE_OUTPUT);
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

  static make(op: string, inputs: string[], outputs: string[], name: string, attributes: Field[] = []): Node {
    return new Node([
      ...inputs.map((i) => bytesField(NODE_INPUT, i)),
      ...outputs.map((o) => bytesField(NODE_OUTPUT, o)),
      bytesField(NODE_NAME, name),
      bytesField(NODE_OP, op),
      ...attributes,
    ]);
  }
}

function intAttr(name: string, value: number): Field {
  return messageField(NODE_ATTRIBUTE, [bytesField(ATTR_NAME, name), varintField(ATTR_I, value), varintField(ATTR_TYPE, 2)]);
}

function intsAttr(name: string, values: number[]): Field {
  return messageField(NODE_ATTRIBUTE, [
    bytesField(ATTR_NAME, name),
    ...values.map((v) => varintField(ATTR_INTS, v)),
    varintField(ATTR_TYPE, 7),
  ]);
}

/** A float scalar held by a TensorProto (raw or float_data), or undefined. */
function scalarOfTensor(tensor: Message): number | undefined {
  const dims = tensor.filter((f) => f.no === TENSOR_DIMS);
  if (dims.some((d) => d.wt === WireType.Varint && d.value !== 1n)) return undefined;
  if (Number(first(tensor, TENSOR_TYPE)?.value ?? 0n) !== ONNX_FLOAT) return undefined;
  const raw = first(tensor, TENSOR_RAW)?.value as Uint8Array | undefined;
  if (raw && raw.length === 4) return new DataView(raw.buffer, raw.byteOffset, 4).getFloat32(0, true);
  const data = first(tensor, TENSOR_FLOAT_DATA)?.value as Uint8Array | undefined;
  if (data && data.length === 4) return new DataView(data.buffer, data.byteOffset, 4).getFloat32(0, true);
  return undefined;
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): Message {
  const shape: Message = dims.map((d) =>
    messageField(1, [typeof d === 'number' ? varintField(1, d) : bytesField(2, d)]),
  );
  const tensorType: Message = [varintField(1, elemType), messageField(2, shape)];
  return [bytesField(1, name), messageField(2, [messageField(1, tensorType)])];
}

function elemTypeOf(info: Message): number {
  const type = first(info, 2);
  const tensor = type && first(asMessage(type), 1);
  const elem = tensor && first(asMessage(tensor), 1);
  return elem ? Number(elem.value) : ONNX_FLOAT;
}

class Graph {
  producer = new Map<string, Node>();
  consumers = new Map<string, Node[]>();
  constants = new Map<string, number>();

  constructor(readonly nodes: Node[], initializers: Message[]) {
    for (const node of nodes) {
      for (const o of node.outputs) this.producer.set(o, node);
      for (const i of node.inputs) {
        const list = this.consumers.get(i) ?? [];
        list.push(node);
        this.consumers.set(i, list);
      }
      if (node.opType === 'Constant') {
        const t = node.attribute('value');
        const tensor = t && first(t, ATTR_T);
        const value = tensor && scalarOfTensor(asMessage(tensor));
        if (value !== undefined) this.constants.set(node.outputs[0], value);
      }
    }
    for (const init of initializers) {
      const name = firstString(init, TENSOR_NAME);
      const value = scalarOfTensor(init);
      if (name && value !== undefined) this.constants.set(name, value);
    }
  }

  /** The consumers of `tensor` other than Shape nodes (which only read its dimensions). */
  dataConsumers(tensor: string): Node[] {
    return (this.consumers.get(tensor) ?? []).filter((n) => n.opType !== 'Shape');
  }
}

const SHAPE_OPS = new Set(['Unsqueeze', 'Expand', 'Reshape', 'Transpose', 'Squeeze', 'Identity']);

interface LayerMatch {
  q: string;
  kNew: string;
  vNew: string;
  scale: number;
  /** The merged-heads attention output [batch, seq, heads × headDim] the rest of the layer reads. */
  output: string;
  removed: Node[];
}

/** Follows `tensor` through shape-only nodes to the single MatMul that reads it as `slot`; null if the path branches. */
function followToMatMul(graph: Graph, tensor: string, slot: number): Node | null {
  let current = tensor;
  for (let hops = 0; hops < 12; hops++) {
    const next = graph.dataConsumers(current);
    if (next.length !== 1) return null;
    const node = next[0];
    if (node.opType === 'MatMul') return node.inputs[slot] === current ? node : null;
    if (!SHAPE_OPS.has(node.opType) || node.inputs[0] !== current) return null;
    current = node.outputs[0];
  }
  return null;
}

function matchLayer(graph: Graph, layer: number, presentKey: string, presentValue: string): LayerMatch | string {
  const ck = graph.producer.get(presentKey);
  const cv = graph.producer.get(presentValue);
  const pastKey = `past_key_values.${layer}.key`;
  const pastValue = `past_key_values.${layer}.value`;
  const isPastConcat = (n: Node | undefined, past: string) => {
    if (!n || n.opType !== 'Concat' || n.inputs.length !== 2 || n.inputs[0] !== past) return false;
    const axis = n.intAttribute('axis');
    return axis === 2 || axis === -2;
  };
  if (!isPastConcat(ck, pastKey) || !isPastConcat(cv, pastValue)) return 'the cache is not a Concat of past and new on axis 2';
  const qk = followToMatMul(graph, presentKey, 1);
  if (!qk) return 'keys do not reach a MatMul through shape operations only';
  let scale = 1;
  let sawMask = false;
  let tensor = qk.outputs[0];
  let softmax: Node | null = null;
  for (let hops = 0; hops < 6 && !softmax; hops++) {
    const next = graph.dataConsumers(tensor);
    if (next.length !== 1) return 'the attention scores branch';
    const node = next[0];
    const other = node.inputs.find((i) => i !== tensor);
    if (node.opType === 'Softmax') {
      const axis = node.intAttribute('axis') ?? -1;
      if (axis !== -1 && axis !== 3) return 'Softmax is not over the last axis';
      softmax = node;
    } else if ((node.opType === 'Mul' || node.opType === 'Div') && other && graph.constants.has(other)) {
      const c = graph.constants.get(other)!;
      scale = node.opType === 'Mul' ? scale * c : scale / c;
    } else if (node.opType === 'Add' && !sawMask) {
      sawMask = true;
    } else {
      return `unexpected ${node.opType} between the scores and the Softmax`;
    }
    tensor = node.outputs[0];
  }
  if (!softmax) return 'no Softmax after the scores';
  const av = graph.dataConsumers(softmax.outputs[0]);
  if (av.length !== 1 || av[0].opType !== 'MatMul' || av[0].inputs[0] !== softmax.outputs[0]) return 'probabilities do not reach one MatMul';
  if (followToMatMul(graph, presentValue, 1) !== av[0]) return 'values do not reach the second MatMul through shape operations only';
  const merge = graph.dataConsumers(av[0].outputs[0]);
  if (merge.length !== 1 || merge[0].opType !== 'Transpose') return 'heads are not merged by a Transpose';
  const perm = merge[0].intsAttribute('perm');
  if (!perm || perm.join(',') !== '0,2,1,3') return 'the head merge is not a [0, 2, 1, 3] Transpose';
  const reshape = graph.dataConsumers(merge[0].outputs[0]);
  if (reshape.length !== 1 || reshape[0].opType !== 'Reshape') return 'heads are not merged by a Reshape';
  return {
    q: qk.inputs[0],
    kNew: ck!.inputs[1],
    vNew: cv!.inputs[1],
    scale,
    output: reshape[0].outputs[0],
    removed: [ck!, cv!, reshape[0]],
  };
}

function int64Tensor(name: string, values: number[], scalar = false): Message {
  return [
    ...(scalar ? [] : [varintField(TENSOR_DIMS, values.length)]),
    varintField(TENSOR_TYPE, ONNX_INT64),
    bytesField(TENSOR_NAME, name),
    bytesField(TENSOR_RAW, new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer)),
  ];
}

/** Topological order (Kahn), keeping the original order where it is free. */
function sortNodes(nodes: Node[], available: Set<string>): Node[] | null {
  const order: Node[] = [];
  let pending = nodes;
  while (pending.length > 0) {
    const rest: Node[] = [];
    for (const node of pending) {
      if (node.inputs.every((i) => i === '' || available.has(i))) {
        order.push(node);
        for (const o of node.outputs) available.add(o);
      } else rest.push(node);
    }
    if (rest.length === pending.length) return null;
    pending = rest;
  }
  return order;
}

/** The bytes an initializer's data takes, inline or in an external file (its `length` entry). */
function storedBytes(initializer: Message): number {
  const raw = first(initializer, TENSOR_RAW)?.value as Uint8Array | undefined;
  if (raw) return raw.length;
  for (const f of initializer) {
    if (f.no !== TENSOR_EXTERNAL) continue;
    const kv = asMessage(f);
    if (firstString(kv, 1) === 'length') return Number(firstString(kv, 2) ?? 0);
  }
  return 0;
}

/** Reads external-data initializers into the graph so that the model can be created from one buffer. */
function inlineExternalData(initializer: Message, dir: string, files: Map<string, Buffer>): Message {
  if (Number(first(initializer, TENSOR_LOCATION)?.value ?? 0n) !== 1) return initializer;
  const entries = new Map<string, string>();
  for (const f of initializer) {
    if (f.no !== TENSOR_EXTERNAL) continue;
    const kv = asMessage(f);
    entries.set(firstString(kv, 1) ?? '', firstString(kv, 2) ?? '');
  }
  const location = entries.get('location');
  if (!location || location.includes('..')) throw new Error(`bad external data location ${location}`);
  let data = files.get(location);
  if (!data) {
    data = readFileSync(join(dir, location));
    files.set(location, data);
  }
  const offset = Number(entries.get('offset') ?? 0);
  const length = entries.has('length') ? Number(entries.get('length')) : data.length - offset;
  const kept = initializer.filter((f) => f.no !== TENSOR_EXTERNAL && f.no !== TENSOR_LOCATION && f.no !== TENSOR_RAW);
  kept.push(bytesField(TENSOR_RAW, data.subarray(offset, offset + length)));
  return kept;
}

/** Collects the nodes and constant initializers a rewrite adds. */
class Additions {
  readonly nodes: Node[] = [];
  readonly initializers = new Map<string, Message>();
  private count = 0;

  node(op: string, inputs: string[], attributes: Field[] = [], output?: string): string {
    const name = `/fused_attention/${op}_${this.count++}`;
    const out = output ?? `${name}_output`;
    this.nodes.push(Node.make(op, inputs, [out], name, attributes));
    return out;
  }

  ints(values: number[]): string {
    const name = `/fused_attention/const_i64_${values.join('_').replace(/-/g, 'm')}`;
    if (!this.initializers.has(name)) this.initializers.set(name, int64Tensor(name, values));
    return name;
  }

  /** An int64 scalar (rank 0). */
  scalar(value: number): string {
    const name = `/fused_attention/const_i64_scalar_${value}`;
    if (!this.initializers.has(name)) this.initializers.set(name, int64Tensor(name, [value], true));
    return name;
  }

  float(value: number): string {
    const name = `/fused_attention/const_f32_${String(value).replace(/[^0-9a-z]/gi, '_')}`;
    if (!this.initializers.has(name)) {
      this.initializers.set(name, [
        varintField(TENSOR_TYPE, ONNX_FLOAT),
        bytesField(TENSOR_NAME, name),
        bytesField(TENSOR_RAW, new Uint8Array(Float32Array.of(value).buffer)),
      ]);
    }
    return name;
  }
}

/**
 * The additive masks every layer shares: [batch, 1, 1, cache] (0 over each row's cached columns, -inf past them)
 * and [groups × seq, seq] (causal among the new tokens, repeated for each query head of a key/value head).
 */
function sharedMasks(add: Additions, groups: number): { past: string; fresh: string; cacheColumns: string } {
  const zero = add.float(0);
  const minusInf = add.float(-Infinity);
  const cacheShape = add.node('Shape', ['past_key_values.0.value']);
  const cacheColumns = add.node('Gather', [cacheShape, add.ints([2])], [intAttr('axis', 0)]);
  const columns = add.node('Range', [add.scalar(0), add.node('Gather', [cacheShape, add.scalar(2)], [intAttr('axis', 0)]), add.scalar(1)]);
  const valid = add.node('Less', [
    add.node('Unsqueeze', [columns, add.ints([0])]),
    add.node('Unsqueeze', [CACHE_LENGTHS_INPUT, add.ints([1])]),
  ]);
  const past = add.node('Unsqueeze', [add.node('Where', [valid, zero, minusInf]), add.ints([1, 2])]);
  const seq = add.node('Gather', [add.node('Shape', ['input_ids']), add.scalar(1)], [intAttr('axis', 0)]);
  const steps = add.node('Range', [add.scalar(0), seq, add.scalar(1)]);
  const causal = add.node('LessOrEqual', [
    add.node('Unsqueeze', [steps, add.ints([0])]),
    add.node('Unsqueeze', [steps, add.ints([1])]),
  ]);
  const fresh = add.node('Tile', [add.node('Where', [causal, zero, minusInf]), add.ints([groups, 1])]);
  return { past, fresh, cacheColumns };
}

/**
 * One layer's attention over the caller's cache, in standard operators. With R = groups × seq query rows per
 * key/value head: scores against the cache (keys stored transposed, [batch, kvHeads, headDim, cache], so no
 * copy) and against the new tokens, one softmax over both, and the weighted sum of both value sets.
 */
function attentionLayer(add: Additions, layer: number, match: LayerMatch, masks: ReturnType<typeof sharedMasks>, o: FuseOptions): void {
  const groups = o.numHeads / o.numKvHeads;
  const q = add.node('Mul', [add.node('Reshape', [match.q, add.ints([0, o.numKvHeads, -1, o.headDim])]), add.float(match.scale)]);
  const pastScores = add.node('Add', [add.node('MatMul', [q, `past_key_values.${layer}.key`]), masks.past]);
  const newKeysT = add.node('Transpose', [match.kNew], [intsAttr('perm', [0, 1, 3, 2])]);
  const newScores = add.node('Add', [add.node('MatMul', [q, newKeysT]), masks.fresh]);
  const probs = add.node('Softmax', [add.node('Concat', [pastScores, newScores], [intAttr('axis', -1)])], [intAttr('axis', -1)]);
  const pastProbs = add.node('Slice', [probs, add.ints([0]), masks.cacheColumns, add.ints([-1])]);
  const newProbs = add.node('Slice', [probs, masks.cacheColumns, add.ints([Number.MAX_SAFE_INTEGER]), add.ints([-1])]);
  const mixed = add.node('Add', [
    add.node('MatMul', [pastProbs, `past_key_values.${layer}.value`]),
    add.node('MatMul', [newProbs, match.vNew]),
  ]);
  const perHead = add.node('Reshape', [mixed, add.ints([0, o.numKvHeads, groups, -1, o.headDim])]);
  const bsnh = add.node('Transpose', [perHead], [intsAttr('perm', [0, 3, 1, 2, 4])]);
  add.node('Reshape', [bsnh, add.ints([0, 0, -1])], [], match.output);
}

/**
 * Reads `graphFile` (and its external data) and returns the rewritten model's bytes, or why the graph does not
 * match. Models whose weights exceed protobuf's 2 GiB message limit are not rewritten.
 */
export function fuseAttention(graphFile: string, options: FuseOptions): FuseResult {
  const model = decode(readFileSync(graphFile));
  const graphField = first(model, MODEL_GRAPH);
  if (!graphField) return { fused: false, reason: 'no graph' };
  const opset = model
    .filter((f) => f.no === MODEL_OPSET)
    .map((f) => asMessage(f))
    .find((o) => (firstString(o, 1) ?? '') === '');
  const opsetVersion = Number(first(opset ?? [], 2)?.value ?? 0n);
  if (opsetVersion < 13) return { fused: false, reason: `opset ${opsetVersion} is older than 13` };
  if (options.numHeads % options.numKvHeads !== 0) return { fused: false, reason: 'heads are not a multiple of key/value heads' };
  const graphFields = asMessage(graphField);
  const nodes = graphFields.filter((f) => f.no === GRAPH_NODE).map((f) => new Node(asMessage(f)));
  const initializers = graphFields.filter((f) => f.no === GRAPH_INITIALIZER).map((f) => asMessage(f));
  const inputs = graphFields.filter((f) => f.no === GRAPH_INPUT).map((f) => asMessage(f));
  const outputs = graphFields.filter((f) => f.no === GRAPH_OUTPUT).map((f) => asMessage(f));
  const graph = new Graph(nodes, initializers);

  const outputNames = outputs.map((o) => firstString(o, 1) ?? '');
  const removed = new Set<Node>();
  const add = new Additions();
  const newOutputs: Message[] = [];
  const { numKvHeads, headDim } = options;
  const masks = sharedMasks(add, options.numHeads / numKvHeads);
  for (let layer = 0; layer < options.numLayers; layer++) {
    const presentKey = outputNames.find((n) => n === `present.${layer}.key` || n === `present_key_values.${layer}.key`);
    const presentValue = outputNames.find((n) => n === `present.${layer}.value` || n === `present_key_values.${layer}.value`);
    if (!presentKey || !presentValue) return { fused: false, reason: `no present outputs for layer ${layer}` };
    if (elemTypeOf(outputs[outputNames.indexOf(presentKey)]) !== ONNX_FLOAT) return { fused: false, reason: 'the cache is not float32' };
    const match = matchLayer(graph, layer, presentKey, presentValue);
    if (typeof match === 'string') return { fused: false, reason: `layer ${layer}: ${match}` };
    for (const node of match.removed) removed.add(node);
    attentionLayer(add, layer, match, masks, options);
    for (const [kind, tensor] of [['key', match.kNew], ['value', match.vNew]] as const) {
      const name = `${NEW_KV_PREFIX}.${layer}.${kind}`;
      add.node('Identity', [tensor], [], name);
      newOutputs.push(valueInfo(name, ONNX_FLOAT, ['batch_size', numKvHeads, 'sequence_length', headDim]));
    }
  }

  // The language-model head runs on the wanted positions only, and the graph reduces its logits for greedy rows.
  const head = graph.producer.get('logits');
  if (!head || head.opType !== 'MatMul') return { fused: false, reason: 'the logits are not a MatMul' };
  const logitsInfo = outputs.find((o) => firstString(o, 1) === 'logits');
  if (!logitsInfo || elemTypeOf(logitsInfo) !== ONNX_FLOAT) return { fused: false, reason: 'no float32 logits output' };
  removed.add(head);
  const flat = add.node('Reshape', [head.inputs[0], add.ints([-1, options.hiddenSize])]);
  const wanted = add.node('Gather', [flat, LOGITS_INDEX_INPUT], [intAttr('axis', 0)]);
  add.node('MatMul', [wanted, head.inputs[1]], [], 'logits');
  if (opsetVersion >= 18) add.node('ReduceLogSumExp', ['logits', add.ints([-1])], [intAttr('keepdims', 0)], LOGSUMEXP_OUTPUT);
  else add.node('ReduceLogSumExp', ['logits'], [intsAttr('axes', [-1]), intAttr('keepdims', 0)], LOGSUMEXP_OUTPUT);
  add.node('ArgMax', ['logits'], [intAttr('axis', -1), intAttr('keepdims', 0)], ARGMAX_OUTPUT);
  if (opsetVersion >= 18) add.node('ReduceMax', ['logits', add.ints([-1])], [intAttr('keepdims', 0)], LOGITS_MAX_OUTPUT);
  else add.node('ReduceMax', ['logits'], [intsAttr('axes', [-1]), intAttr('keepdims', 0)], LOGITS_MAX_OUTPUT);

  // Keep what the outputs need; everything else (masks, repeat_kv, the old concats, the full-width head) goes.
  const liveOutputs = [
    valueInfo('logits', ONNX_FLOAT, ['batch_size', 'logits_positions', 'vocab_size']),
    valueInfo(LOGSUMEXP_OUTPUT, ONNX_FLOAT, ['batch_size', 'logits_positions']),
    valueInfo(ARGMAX_OUTPUT, ONNX_INT64, ['batch_size', 'logits_positions']),
    valueInfo(LOGITS_MAX_OUTPUT, ONNX_FLOAT, ['batch_size', 'logits_positions']),
    ...newOutputs,
  ];
  const candidates = [...nodes.filter((n) => !removed.has(n)), ...add.nodes];
  const producer = new Map<string, Node>();
  for (const n of candidates) for (const o of n.outputs) producer.set(o, n);
  const live = new Set<Node>();
  const stack = liveOutputs.map((o) => firstString(o, 1)!);
  while (stack.length > 0) {
    const n = producer.get(stack.pop()!);
    if (!n || live.has(n)) continue;
    live.add(n);
    stack.push(...n.inputs);
  }
  const used = new Set<string>();
  for (const n of live) for (const i of n.inputs) used.add(i);
  for (const name of outputNames) {
    if (used.has(name) && !producer.has(name)) return { fused: false, reason: `${name} is still read` };
  }
  const keptInputs = inputs.filter((i) => used.has(firstString(i, 1) ?? ''));
  const initializerNames = new Set(initializers.map((i) => firstString(i, TENSOR_NAME) ?? ''));
  const available = new Set<string>([
    ...keptInputs.map((i) => firstString(i, 1)!),
    ...initializerNames,
    ...add.initializers.keys(),
    CACHE_LENGTHS_INPUT,
    LOGITS_INDEX_INPUT,
  ]);
  const ordered = sortNodes(
    candidates.filter((n) => live.has(n)),
    available,
  );
  if (!ordered) return { fused: false, reason: 'the rewritten graph has a cycle or a missing input' };

  const dir = dirname(graphFile);
  const files = new Map<string, Buffer>();
  const usedInitializers = initializers.filter((i) => used.has(firstString(i, TENSOR_NAME) ?? ''));
  // The rewritten model is one protobuf message: check its size before reading any weights.
  let total = 0;
  for (const i of usedInitializers) total += storedBytes(i);
  if (total > 1.9 * 2 ** 30) return { fused: false, reason: 'weights over the 2 GiB protobuf limit' };
  const keptInitializers = usedInitializers.map((i) => inlineExternalData(i, dir, files));

  const newGraph: Message = [];
  for (const f of graphFields) {
    if ([GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_INPUT, GRAPH_OUTPUT, GRAPH_VALUE_INFO].includes(f.no)) continue;
    newGraph.push(f);
  }
  for (const n of ordered) newGraph.push(messageField(GRAPH_NODE, n.fields));
  for (const i of keptInitializers) newGraph.push(messageField(GRAPH_INITIALIZER, i));
  for (const i of add.initializers.values()) newGraph.push(messageField(GRAPH_INITIALIZER, i));
  for (const i of keptInputs) {
    const name = firstString(i, 1);
    if (name?.endsWith('.key') && name.startsWith('past_key_values.')) {
      // Keys are cached transposed, so that the scores are one MatMul straight from the cache.
      newGraph.push(messageField(GRAPH_INPUT, valueInfo(name, ONNX_FLOAT, ['batch_size', numKvHeads, headDim, 'cache_length'])));
    } else if (name?.startsWith('past_key_values.')) {
      newGraph.push(messageField(GRAPH_INPUT, valueInfo(name, ONNX_FLOAT, ['batch_size', numKvHeads, 'cache_length', headDim])));
    } else newGraph.push(messageField(GRAPH_INPUT, i));
  }
  newGraph.push(messageField(GRAPH_INPUT, valueInfo(CACHE_LENGTHS_INPUT, ONNX_INT64, ['batch_size'])));
  newGraph.push(messageField(GRAPH_INPUT, valueInfo(LOGITS_INDEX_INPUT, ONNX_INT64, ['batch_size', 'logits_positions'])));
  for (const o of liveOutputs) newGraph.push(messageField(GRAPH_OUTPUT, o));

  const newModel: Message = model.filter((f) => f.no !== MODEL_GRAPH);
  newModel.push(messageField(MODEL_GRAPH, newGraph));
  return { fused: true, bytes: encode(newModel) };
}
