import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { OnnxModel } from './onnx-model';
import { intAttr, intsAttr, MS_DOMAIN, OnnxNode } from './onnx-node';
import { floatsView, OnnxTensor, TensorType } from './onnx-tensor';

const floats = (...values: number[]) => new Uint8Array(Float32Array.of(...values).buffer);

/** y = MatMul(x, w) + b, with `w` computed on save and `b` inline. */
function smallModel(dir = '.'): OnnxModel {
  return OnnxModel.create({
    nodes: [
      OnnxNode.make('MatMul', ['x', 'w'], ['xw'], 'matmul'),
      OnnxNode.make('Add', ['xw', 'b'], ['y'], 'add', [intAttr('axis', -1), intsAttr('perm', [0, 2, 1])]),
    ],
    initializers: [
      OnnxTensor.computed('w', TensorType.Float, [2, 2], 16, () => floats(1, 2, 3, 4)),
      OnnxTensor.inline('b', TensorType.Float, [2], floats(0.5, -0.5)),
    ],
    inputs: [{ name: 'x', type: TensorType.Float, dims: ['batch', 2] }],
    outputs: [{ name: 'y', type: TensorType.Float, dims: ['batch', 2] }],
    opsets: { '': 17 },
    dir,
  });
}

describe('ONNX model', () => {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-onnx-model-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('round-trips a graph through protobuf: nodes, attributes, initializers, inputs and outputs', () => {
    const back = OnnxModel.read('small.onnx', smallModel().toBytes(), root);
    assert.deepEqual(
      back.nodes.map((n) => [n.opType, n.name, n.inputs, n.outputs]),
      [
        ['MatMul', 'matmul', ['x', 'w'], ['xw']],
        ['Add', 'add', ['xw', 'b'], ['y']],
      ],
    );
    const add = back.nodes[1];
    assert.equal(add.intAttribute('axis'), -1);
    assert.deepEqual(add.intsAttribute('perm'), [0, 2, 1]);
    assert.equal(add.intAttribute('missing'), undefined);
    assert.deepEqual(
      [...floatsView(back.initializers.get('w')!.read())],
      [1, 2, 3, 4],
      'computed, then written inline',
    );
    assert.deepEqual(back.initializers.get('b')!.dims, [2]);
    assert.deepEqual(back.inputs, [{ name: 'x', type: TensorType.Float, dims: ['batch', 2] }]);
    assert.equal(back.opsetVersion(), 17);
    assert.equal(back.opsetVersion(MS_DOMAIN), 0);
    assert.equal(back.weightBytes, 24);
  });

  it('changes a clone, not the model it came from, and imports an operator set once', () => {
    const model = smallModel();
    const copy = model.clone();
    copy.nodes.pop();
    copy.initializers.delete('b');
    copy.importOpset(MS_DOMAIN, 1);
    copy.importOpset(MS_DOMAIN, 2);
    assert.equal(model.nodes.length, 2);
    assert.ok(model.initializers.has('b'));
    assert.equal(copy.opsetVersion(MS_DOMAIN), 1);
  });

  it('saves the selected tensors into an aligned data file and points the graph at it', () => {
    const dir = join(root, 'saved');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    const progress: number[] = [];
    smallModel(dir).save({
      graphFile: join(dir, 'model.onnx'),
      dataFile: join(dir, 'model.onnx_data'),
      moveToData: () => true,
      onTensor: (written, total) => progress.push(written / total),
    });
    assert.deepEqual(progress, [0.5, 1]);
    // w at 0 (16 bytes), b at the next 64-byte boundary
    assert.equal(statSync(join(dir, 'model.onnx_data')).size, 64 + 8);
    const back = OnnxModel.read('model.onnx', readFileSync(join(dir, 'model.onnx')), dir);
    const b = back.initializers.get('b')!;
    assert.deepEqual(b.source, { kind: 'external', file: join(dir, 'model.onnx_data'), offset: 64, length: 8 });
    assert.deepEqual([...floatsView(b.read())], [0.5, -0.5]);
    // Saved again without a data file, each tensor stays where it is.
    const again = OnnxModel.read('x', back.toBytes(), dir);
    assert.deepEqual(again.initializers.get('b')!.source, b.source);
  });

  it('refuses a data file outside the graph directory', () => {
    assert.throws(
      () => smallModel(root).save({ graphFile: join(root, 'sub', 'model.onnx'), dataFile: join(root, 'data') }),
      /must be in the graph's directory/,
    );
  });
});
