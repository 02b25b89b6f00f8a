import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, LayerMatch, matchLayer, matchLogitsHead } from './attention-pattern';
import { intAttr, intsAttr, MS_DOMAIN, OnnxNode } from './onnx-node';
import { OnnxTensor, TensorType } from './onnx-tensor';

const scale = OnnxTensor.inline('scale', TensorType.Float, [], new Uint8Array(Float32Array.of(0.125).buffer));

/**
 * One layer of attention as an Optimum export has it: the cache concatenated on axis 2, repeat_kv and a transpose
 * on the keys, a scale, an additive mask and a Softmax, then the values, the head merge and a logits MatMul.
 * `edit` changes a node by name before the graph is indexed.
 */
function layerGraph(edit: (name: string, node: OnnxNode) => OnnxNode | OnnxNode[] = (_, n) => n): Graph {
  const n = (op: string, inputs: string[], output: string, attrs: ReturnType<typeof intAttr>[] = []) =>
    OnnxNode.make(op, inputs, [output], output, attrs);
  const nodes = [
    n('Concat', ['past_key_values.0.key', 'k'], 'present.0.key', [intAttr('axis', -2)]),
    n('Concat', ['past_key_values.0.value', 'v'], 'present.0.value', [intAttr('axis', 2)]),
    n('Shape', ['present.0.key'], 'key_shape'),
    n('Expand', ['present.0.key', 'key_shape'], 'repeated_key'),
    n('Transpose', ['repeated_key'], 'key_t', [intsAttr('perm', [0, 1, 3, 2])]),
    n('MatMul', ['q', 'key_t'], 'scores'),
    n('Mul', ['scores', 'scale'], 'scaled'),
    n('Add', ['scaled', 'mask'], 'masked'),
    n('Cast', ['masked'], 'masked_f32', [intAttr('to', TensorType.Float)]),
    n('Softmax', ['masked_f32'], 'probs', [intAttr('axis', -1)]),
    n('Expand', ['present.0.value', 'key_shape'], 'repeated_value'),
    n('MatMul', ['probs', 'repeated_value'], 'mixed'),
    n('Transpose', ['mixed'], 'merged', [intsAttr('perm', [0, 2, 1, 3])]),
    n('Reshape', ['merged', 'hidden_shape'], 'attention_out'),
    n('MatMul', ['attention_out', 'lm_head'], 'logits'),
  ].flatMap((node) => edit(node.name, node));
  return new Graph(nodes, [scale]);
}

const logitsOutput = [{ name: 'logits', type: TensorType.Float, dims: ['batch', 'seq', 'vocab'] }];

function reason(graph: Graph): string {
  const match = matchLayer(graph, 0, 'present.0.key', 'present.0.value');
  assert.equal(typeof match, 'string');
  return match as string;
}

describe('attention pattern', () => {
  it('indexes producers, consumers and scalar constants, reading dimensions apart from data', () => {
    const graph = layerGraph();
    assert.equal(graph.producer.get('scores')?.opType, 'MatMul');
    assert.equal(graph.constants.get('scale'), 0.125);
    assert.deepEqual(
      graph.dataConsumers('present.0.key').map((n) => n.opType),
      ['Expand'],
    );
    assert.equal(graph.consumers.get('present.0.key')?.length, 2, 'the Shape reads it too');
  });

  it('matches a layer: the query, the new key and value, the scale and the merged output', () => {
    const match = matchLayer(layerGraph(), 0, 'present.0.key', 'present.0.value') as LayerMatch;
    assert.equal(typeof match, 'object');
    assert.deepEqual(
      { q: match.q, kNew: match.kNew, vNew: match.vNew, scale: match.scale, output: match.output },
      { q: 'q', kNew: 'k', vNew: 'v', scale: 0.125, output: 'attention_out' },
    );
    assert.deepEqual(
      match.removed.map((n) => n.name),
      ['present.0.key', 'present.0.value', 'attention_out'],
    );
  });

  it('divides by a constant as well as multiplying', () => {
    const graph = layerGraph((name, node) =>
      name === 'scaled' ? OnnxNode.make('Div', ['scores', 'scale'], ['scaled'], 'scaled') : node,
    );
    assert.equal((matchLayer(graph, 0, 'present.0.key', 'present.0.value') as LayerMatch).scale, 8);
  });

  it('says why a layer does not match', () => {
    const concatOnAxis1 = layerGraph((name, node) =>
      name === 'present.0.key' ? node.withIntAttribute('axis', 1) : node,
    );
    assert.match(reason(concatOnAxis1), /not a Concat of past and new/);
    const softmaxOnAxis1 = layerGraph((name, node) => (name === 'probs' ? node.withIntAttribute('axis', 1) : node));
    assert.match(reason(softmaxOnAxis1), /Softmax is not over the last axis/);
    const branching = layerGraph((name, node) =>
      name === 'scores' ? [node, OnnxNode.make('Relu', ['scores'], ['other'], 'other')] : node,
    );
    assert.match(reason(branching), /scores branch/);
    const twoMasks = layerGraph((name, node) =>
      name === 'masked_f32' ? OnnxNode.make('Add', ['masked', 'mask'], ['masked_f32'], 'masked_f32') : node,
    );
    assert.match(reason(twoMasks), /unexpected Add/);
    const noMerge = layerGraph((name, node) =>
      name === 'merged' ? node.withAttribute('perm', intsAttr('perm', [0, 1, 2, 3])) : node,
    );
    assert.match(reason(noMerge), /\[0, 2, 1, 3\] Transpose/);
  });

  it('matches the logits head: a MatMul, a MatMulNBits, or either before a Cast to float32', () => {
    const plain = matchLogitsHead(layerGraph(), logitsOutput);
    assert.ok(typeof plain === 'object');
    assert.equal(plain.type, TensorType.Float);
    assert.deepEqual(
      plain.removed.map((n) => n.name),
      ['logits'],
    );

    const halfThenCast = layerGraph((name, node) =>
      name === 'logits'
        ? [
            OnnxNode.make('MatMulNBits', ['attention_out', 'codes'], ['logits_f16'], 'head', [], MS_DOMAIN),
            OnnxNode.make('Cast', ['logits_f16'], ['logits'], 'cast', [intAttr('to', TensorType.Float)]),
          ]
        : node,
    );
    const cast = matchLogitsHead(halfThenCast, logitsOutput);
    assert.ok(typeof cast === 'object');
    assert.equal(cast.type, TensorType.Float16);
    assert.deepEqual(
      cast.removed.map((n) => n.name),
      ['cast', 'head'],
    );

    const notMatMul = layerGraph((name, node) =>
      name === 'logits' ? OnnxNode.make('Gemm', ['attention_out', 'lm_head'], ['logits'], 'logits') : node,
    );
    assert.equal(matchLogitsHead(notMatMul, logitsOutput), 'the logits are not a MatMul');
    const int64Logits = [{ name: 'logits', type: TensorType.Int64, dims: null }];
    assert.equal(matchLogitsHead(layerGraph(), int64Logits), 'the logits are not floats');
  });
});
