/**
 * Rewrites an Optimum decoder export's attention, at load time, so that it reads a KV cache the caller owns.
 * Standard ONNX operators only. The rewrite edits the graph and leaves the weights where they are (see
 * onnx-model.ts), so a model of any size is rewritten in the same few milliseconds.
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
 * - outputs: `logits` [batch, k, vocab] (float32 whatever the graph computes in), their `logits_logsumexp`,
 *   `logits_argmax` and `logits_max` [batch, k] (so that a greedy row needs no pass over the vocabulary in JS, and a
 *   step of greedy rows need not fetch the logits at all), and `new_key_values.N.key/value` [batch, kvHeads, seq,
 *   headDim] in the cache's own type (float32 or float16, as the export declares it).
 * A prefill (empty cache) takes right-padded rows, causal among the new tokens, and usually asks for one position
 * per row: the language-model head over every prompt position is much of a prefill's work.
 *
 * The pattern it replaces is matched in attention-pattern.ts; a graph that does not match is left as it is, and the
 * caller serves it padded.
 */
import { Graph, LayerMatch, matchLayer, matchLogitsHead } from './attention-pattern';
import { floatToHalf } from './float16';
import { OnnxModel } from './onnx-model';
import { intAttr, intsAttr, OnnxNode } from './onnx-node';
import { OnnxTensor, TensorType } from './onnx-tensor';

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

export type FuseResult = { fused: true; model: OnnxModel } | { fused: false; reason: string };

/** Topological order (Kahn), keeping the original order where it is free. */
function sortNodes(nodes: OnnxNode[], available: Set<string>): OnnxNode[] | null {
  const order: OnnxNode[] = [];
  let pending = nodes;
  while (pending.length > 0) {
    const rest: OnnxNode[] = [];
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

/** Collects the nodes and constant initializers a rewrite adds. */
class Additions {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, OnnxTensor>();
  private count = 0;

  node(op: string, inputs: string[], attributes: ReturnType<typeof intAttr>[] = [], output?: string): string {
    const name = `/fused_attention/${op}_${this.count++}`;
    const out = output ?? `${name}_output`;
    this.nodes.push(OnnxNode.make(op, inputs, [out], name, attributes));
    return out;
  }

  ints(values: number[]): string {
    const name = `/fused_attention/const_i64_${values.join('_').replace(/-/g, 'm')}`;
    if (!this.initializers.has(name)) {
      const raw = new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer);
      this.initializers.set(name, OnnxTensor.inline(name, TensorType.Int64, [values.length], raw));
    }
    return name;
  }

  /** An int64 scalar (rank 0). */
  scalar(value: number): string {
    const name = `/fused_attention/const_i64_scalar_${value}`;
    if (!this.initializers.has(name)) {
      this.initializers.set(
        name,
        OnnxTensor.inline(name, TensorType.Int64, [], new Uint8Array(BigInt64Array.of(BigInt(value)).buffer)),
      );
    }
    return name;
  }

  /** A float scalar of `type` (float32 or float16). */
  float(value: number, type: typeof TensorType.Float | typeof TensorType.Float16 = TensorType.Float): string {
    const suffix = type === TensorType.Float16 ? 'f16' : 'f32';
    const name = `/fused_attention/const_${suffix}_${String(value).replace(/[^0-9a-z]/gi, '_')}`;
    if (!this.initializers.has(name)) {
      const raw =
        type === TensorType.Float16
          ? new Uint8Array(Uint16Array.of(floatToHalf(value)).buffer)
          : new Uint8Array(Float32Array.of(value).buffer);
      this.initializers.set(name, OnnxTensor.inline(name, type, [], raw));
    }
    return name;
  }

  cast(input: string, to: TensorType): string {
    return this.node('Cast', [input], [intAttr('to', to)]);
  }
}

type FloatType = typeof TensorType.Float | typeof TensorType.Float16;

/**
 * The additive masks every layer shares, float32: [batch, 1, 1, cache] (0 over each row's cached columns, -inf
 * past them) and [groups × seq, seq] (causal among the new tokens, repeated for each query head of a key/value
 * head).
 */
function sharedMasks(add: Additions, groups: number): { past: string; fresh: string; cacheColumns: string } {
  const zero = add.float(0);
  const minusInf = add.float(-Infinity);
  const cacheShape = add.node('Shape', ['past_key_values.0.value']);
  const cacheColumns = add.node('Gather', [cacheShape, add.ints([2])], [intAttr('axis', 0)]);
  const columns = add.node('Range', [
    add.scalar(0),
    add.node('Gather', [cacheShape, add.scalar(2)], [intAttr('axis', 0)]),
    add.scalar(1),
  ]);
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
 * copy) and against the new tokens, one softmax over both, and the weighted sum of both value sets. The products
 * run in the cache's type; the masked softmax runs in float32, as Hugging Face's own attention does.
 */
function attentionLayer(
  add: Additions,
  layer: number,
  match: LayerMatch,
  masks: ReturnType<typeof sharedMasks>,
  o: FuseOptions,
  type: FloatType,
): void {
  const groups = o.numHeads / o.numKvHeads;
  const toFloat = (t: string) => (type === TensorType.Float ? t : add.cast(t, TensorType.Float));
  const q = add.node('Mul', [
    add.node('Reshape', [match.q, add.ints([0, o.numKvHeads, -1, o.headDim])]),
    add.float(match.scale, type),
  ]);
  const pastScores = add.node('Add', [toFloat(add.node('MatMul', [q, `past_key_values.${layer}.key`])), masks.past]);
  const newKeysT = add.node('Transpose', [match.kNew], [intsAttr('perm', [0, 1, 3, 2])]);
  const newScores = add.node('Add', [toFloat(add.node('MatMul', [q, newKeysT])), masks.fresh]);
  let probs = add.node(
    'Softmax',
    [add.node('Concat', [pastScores, newScores], [intAttr('axis', -1)])],
    [intAttr('axis', -1)],
  );
  if (type !== TensorType.Float) probs = add.cast(probs, type);
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
 * Rewrites `source` (left unchanged) and returns the rewritten model, or why the graph does not match. The weights
 * are shared with the source: nothing is read or copied.
 */
export function fuseAttention(source: OnnxModel, options: FuseOptions): FuseResult {
  const opsetVersion = source.opsetVersion();
  if (opsetVersion < 13) return { fused: false, reason: `opset ${opsetVersion} is older than 13` };
  if (options.numHeads % options.numKvHeads !== 0)
    return { fused: false, reason: 'heads are not a multiple of key/value heads' };
  const { nodes, initializers, inputs, outputs } = source;
  const graph = new Graph(nodes, initializers.values());

  const outputNames = outputs.map((o) => o.name);
  const removed = new Set<OnnxNode>();
  const add = new Additions();
  const newOutputs: typeof outputs = [];
  const { numKvHeads, headDim } = options;
  const masks = sharedMasks(add, options.numHeads / numKvHeads);
  let kvType: FloatType | null = null;
  for (let layer = 0; layer < options.numLayers; layer++) {
    const presentKey = outputNames.find((n) => n === `present.${layer}.key` || n === `present_key_values.${layer}.key`);
    const presentValue = outputNames.find(
      (n) => n === `present.${layer}.value` || n === `present_key_values.${layer}.value`,
    );
    if (!presentKey || !presentValue) return { fused: false, reason: `no present outputs for layer ${layer}` };
    const type = outputs[outputNames.indexOf(presentKey)].type;
    if (type !== TensorType.Float && type !== TensorType.Float16)
      return { fused: false, reason: `the cache has element type ${type}` };
    if (kvType !== null && type !== kvType) return { fused: false, reason: 'the layers cache different types' };
    kvType = type;
    const match = matchLayer(graph, layer, presentKey, presentValue);
    if (typeof match === 'string') return { fused: false, reason: `layer ${layer}: ${match}` };
    for (const node of match.removed) removed.add(node);
    attentionLayer(add, layer, match, masks, options, type);
    for (const [kind, tensor] of [
      ['key', match.kNew],
      ['value', match.vNew],
    ] as const) {
      const name = `${NEW_KV_PREFIX}.${layer}.${kind}`;
      add.node('Identity', [tensor], [], name);
      newOutputs.push({ name, type, dims: ['batch_size', numKvHeads, 'sequence_length', headDim] });
    }
  }

  // The language-model head runs on the wanted positions only, and the graph reduces its logits for greedy rows.
  const logitsHead = matchLogitsHead(graph, outputs);
  if (typeof logitsHead === 'string') return { fused: false, reason: logitsHead };
  const { head, type: headType } = logitsHead;
  for (const node of logitsHead.removed) removed.add(node);
  removed.add(head);
  const flat = add.node('Reshape', [head.inputs[0], add.ints([-1, options.hiddenSize])]);
  const wanted = add.node('Gather', [flat, LOGITS_INDEX_INPUT], [intAttr('axis', 0)]);
  const headOut = headType === TensorType.Float ? 'logits' : '/fused_attention/logits_before_cast';
  add.nodes.push(head.rewired([wanted, ...head.inputs.slice(1)], [headOut]));
  if (headOut !== 'logits') add.node('Cast', [headOut], [intAttr('to', TensorType.Float)], 'logits');
  if (opsetVersion >= 18)
    add.node('ReduceLogSumExp', ['logits', add.ints([-1])], [intAttr('keepdims', 0)], LOGSUMEXP_OUTPUT);
  else add.node('ReduceLogSumExp', ['logits'], [intsAttr('axes', [-1]), intAttr('keepdims', 0)], LOGSUMEXP_OUTPUT);
  add.node('ArgMax', ['logits'], [intAttr('axis', -1), intAttr('keepdims', 0)], ARGMAX_OUTPUT);
  if (opsetVersion >= 18)
    add.node('ReduceMax', ['logits', add.ints([-1])], [intAttr('keepdims', 0)], LOGITS_MAX_OUTPUT);
  else add.node('ReduceMax', ['logits'], [intsAttr('axes', [-1]), intAttr('keepdims', 0)], LOGITS_MAX_OUTPUT);

  // Keep what the outputs need; everything else (masks, repeat_kv, the old concats, the full-width head) goes.
  const liveOutputs: typeof outputs = [
    { name: 'logits', type: TensorType.Float, dims: ['batch_size', 'logits_positions', 'vocab_size'] },
    { name: LOGSUMEXP_OUTPUT, type: TensorType.Float, dims: ['batch_size', 'logits_positions'] },
    { name: ARGMAX_OUTPUT, type: TensorType.Int64, dims: ['batch_size', 'logits_positions'] },
    { name: LOGITS_MAX_OUTPUT, type: TensorType.Float, dims: ['batch_size', 'logits_positions'] },
    ...newOutputs,
  ];
  const candidates = [...nodes.filter((n) => !removed.has(n)), ...add.nodes];
  const producer = new Map<string, OnnxNode>();
  for (const n of candidates) for (const o of n.outputs) producer.set(o, n);
  const live = new Set<OnnxNode>();
  const stack = liveOutputs.map((o) => o.name);
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
  const keptInputs = inputs.filter((i) => used.has(i.name));
  const available = new Set<string>([
    ...keptInputs.map((i) => i.name),
    ...initializers.keys(),
    ...add.initializers.keys(),
    CACHE_LENGTHS_INPUT,
    LOGITS_INDEX_INPUT,
  ]);
  const ordered = sortNodes(
    candidates.filter((n) => live.has(n)),
    available,
  );
  if (!ordered) return { fused: false, reason: 'the rewritten graph has a cycle or a missing input' };

  const model = source.clone();
  model.nodes = ordered;
  model.initializers = new Map([...initializers].filter(([name]) => used.has(name)));
  for (const [name, tensor] of add.initializers) model.initializers.set(name, tensor);
  model.inputs = keptInputs.map((i) => {
    if (!i.name.startsWith('past_key_values.')) return i;
    // Keys are cached transposed, so that the scores are one MatMul straight from the cache.
    const dims = i.name.endsWith('.key')
      ? ['batch_size', numKvHeads, headDim, 'cache_length']
      : ['batch_size', numKvHeads, 'cache_length', headDim];
    return { name: i.name, type: i.type, dims };
  });
  model.inputs.push({ name: CACHE_LENGTHS_INPUT, type: TensorType.Int64, dims: ['batch_size'] });
  model.inputs.push({ name: LOGITS_INDEX_INPUT, type: TensorType.Int64, dims: ['batch_size', 'logits_positions'] });
  model.outputs = liveOutputs;
  // Shapes and types the exporter recorded for intermediate tensors may no longer hold.
  model.valueInfo = [];
  return { fused: true, model };
}
