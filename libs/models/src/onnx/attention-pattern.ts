/**
 * The pattern the attention rewrite (fuse-attention.ts) replaces, matched strictly on an Optimum decoder export:
 * per layer, past and new keys concatenated on the sequence axis; keys and values reaching the two attention
 * MatMuls through shape operations only (repeat_kv, transposes); a scalar scale, an additive mask, casts and a
 * Softmax between them; the heads merged by a Transpose and a Reshape after; and the logits one MatMul (or a
 * quantized MatMulNBits). Anything else (GPT-2's causal `Where`, a sliding window, ALiBi) does not match, and says why.
 */
import { MS_DOMAIN, OnnxNode } from './onnx-node';
import { OnnxTensor, scalarOfTensor, TensorType } from './onnx-tensor';
import type { ValueInfo } from './value-info';

/** A graph's producers, consumers and scalar constants, indexed once for the matcher. */
export class Graph {
  producer = new Map<string, OnnxNode>();
  consumers = new Map<string, OnnxNode[]>();
  constants = new Map<string, number>();

  constructor(
    readonly nodes: OnnxNode[],
    initializers: Iterable<OnnxTensor>,
  ) {
    for (const node of nodes) {
      for (const o of node.outputs) this.producer.set(o, node);
      for (const i of node.inputs) {
        const list = this.consumers.get(i) ?? [];
        list.push(node);
        this.consumers.set(i, list);
      }
      if (node.opType === 'Constant') {
        const tensor = node.tensorAttribute('value');
        const value = tensor && scalarOfTensor(tensor);
        if (value !== undefined) this.constants.set(node.outputs[0], value);
      }
    }
    for (const init of initializers) {
      if (init.source.kind !== 'inline' || init.elements !== 1) continue;
      const value = scalarOfTensor(init.proto!);
      if (value !== undefined) this.constants.set(init.name, value);
    }
  }

  /** The consumers of `tensor` other than Shape nodes (which only read its dimensions). */
  dataConsumers(tensor: string): OnnxNode[] {
    return (this.consumers.get(tensor) ?? []).filter((n) => n.opType !== 'Shape');
  }
}

const SHAPE_OPS = new Set(['Unsqueeze', 'Expand', 'Reshape', 'Transpose', 'Squeeze', 'Identity']);

export interface LayerMatch {
  q: string;
  kNew: string;
  vNew: string;
  scale: number;
  /** The merged-heads attention output [batch, seq, heads × headDim] the rest of the layer reads. */
  output: string;
  removed: OnnxNode[];
}

/** Follows `tensor` through shape-only nodes to the single MatMul that reads it as `slot`; null if the path branches. */
function followToMatMul(graph: Graph, tensor: string, slot: number): OnnxNode | null {
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

/** Follows `tensor` through Cast nodes to its single consumer. */
function skipCasts(graph: Graph, tensor: string): OnnxNode | null {
  let current = tensor;
  for (let hops = 0; hops < 4; hops++) {
    const next = graph.dataConsumers(current);
    if (next.length !== 1) return null;
    if (next[0].opType !== 'Cast') return next[0];
    current = next[0].outputs[0];
  }
  return null;
}

/** Matches layer `layer`'s attention, from its present key and value outputs back to the scores and on to the merged heads. */
export function matchLayer(graph: Graph, layer: number, presentKey: string, presentValue: string): LayerMatch | string {
  const ck = graph.producer.get(presentKey);
  const cv = graph.producer.get(presentValue);
  const pastKey = `past_key_values.${layer}.key`;
  const pastValue = `past_key_values.${layer}.value`;
  const isPastConcat = (n: OnnxNode | undefined, past: string) => {
    if (!n || n.opType !== 'Concat' || n.inputs.length !== 2 || n.inputs[0] !== past) return false;
    const axis = n.intAttribute('axis');
    return axis === 2 || axis === -2;
  };
  if (!isPastConcat(ck, pastKey) || !isPastConcat(cv, pastValue))
    return 'the cache is not a Concat of past and new on axis 2';
  const qk = followToMatMul(graph, presentKey, 1);
  if (!qk) return 'keys do not reach a MatMul through shape operations only';
  let scale = 1;
  let sawMask = false;
  let tensor = qk.outputs[0];
  let softmax: OnnxNode | null = null;
  for (let hops = 0; hops < 8 && !softmax; hops++) {
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
    } else if (node.opType !== 'Cast') {
      return `unexpected ${node.opType} between the scores and the Softmax`;
    }
    tensor = node.outputs[0];
  }
  if (!softmax) return 'no Softmax after the scores';
  const av = skipCasts(graph, softmax.outputs[0]);
  if (!av || av.opType !== 'MatMul') return 'probabilities do not reach one MatMul';
  if (followToMatMul(graph, presentValue, 1) !== av)
    return 'values do not reach the second MatMul through shape operations only';
  const merge = graph.dataConsumers(av.outputs[0]);
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

export interface HeadMatch {
  /** The MatMul (or MatMulNBits) that computes the logits. */
  head: OnnxNode;
  /** The element type it computes in. */
  type: typeof TensorType.Float | typeof TensorType.Float16;
  /** The nodes the rewrite replaces: the head, and the Cast to float32 after it where there is one. */
  removed: OnnxNode[];
}

/** Matches the language-model head: the one MatMul whose output (or its Cast to float32) is the graph's `logits`. */
export function matchLogitsHead(graph: Graph, outputs: readonly ValueInfo[]): HeadMatch | string {
  const removed: OnnxNode[] = [];
  let head = graph.producer.get('logits');
  let headType = outputs.find((o) => o.name === 'logits')?.type;
  if (head?.opType === 'Cast') {
    removed.push(head);
    head = graph.producer.get(head.inputs[0]);
    headType = TensorType.Float16;
  }
  const quantizedHead = head?.opType === 'MatMulNBits' && head.domain === MS_DOMAIN;
  if (!head || (head.opType !== 'MatMul' && !quantizedHead)) return 'the logits are not a MatMul';
  if (headType !== TensorType.Float && headType !== TensorType.Float16) return 'the logits are not floats';
  removed.push(head);
  return { head, type: headType, removed };
}
