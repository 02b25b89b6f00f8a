import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { identityModelBytes } from '../../../../test/support/onnx-fixture';
import { modelDir } from '../../../../test/support/repo';
import { loadModelConfig } from '../model-config';
import { CACHE_LENGTHS_INPUT, fuseAttention, LOGITS_INDEX_INPUT } from './fuse-attention';
import { OnnxModel } from './onnx-model';

function readGraph(file: string): OnnxModel {
  return OnnxModel.read(file, readFileSync(file), dirname(file));
}

describe('attention rewrite', () => {
  const root = mkdtempSync(join(tmpdir(), 'switchyard-fuse-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('rewrites the demo models, with the ragged interface, and leaves the weights in their file', () => {
    for (const name of ['demo-tiny', 'demo-small']) {
      const config = loadModelConfig(modelDir(name));
      const source = readGraph(join(modelDir(name), 'onnx/model.onnx'));
      const result = fuseAttention(source, {
        numLayers: config.numLayers,
        numHeads: config.numAttentionHeads,
        numKvHeads: config.numKvHeads,
        headDim: config.headDim,
        hiddenSize: config.hiddenSize,
      });
      assert.ok(result.fused, result.fused ? '' : result.reason);
      const bytes = result.model.toBytes();
      // the graph alone: every weight still points into model.onnx_data
      assert.ok(bytes.length < 200_000, `the rewritten graph is ${bytes.length} bytes`);
      const rewritten = OnnxModel.read('rewritten.onnx', bytes, modelDir(name) + '/onnx');
      const external = [...rewritten.initializers.values()].filter((t) => t.source.kind === 'external');
      assert.ok(
        external.length > 0 &&
          external.every((t) => t.source.kind === 'external' && t.source.file.endsWith('model.onnx_data')),
      );
      const inputs = rewritten.inputs.map((i) => i.name);
      assert.ok(inputs.includes(CACHE_LENGTHS_INPUT) && inputs.includes(LOGITS_INDEX_INPUT));
      assert.ok(!inputs.includes('attention_mask'), 'the mask is computed from the cache lengths');
      assert.ok(!rewritten.nodes.some((n) => n.opType === 'Expand'), 'no repeat_kv copies are left');
      // the source model is not changed by the rewrite
      assert.ok(source.inputs.some((i) => i.name === 'attention_mask'));
    }
  });

  it('leaves a graph that does not match as it is, and says why', () => {
    const file = join(root, 'identity.onnx');
    writeFileSync(file, identityModelBytes());
    const result = fuseAttention(readGraph(file), {
      numLayers: 1,
      numHeads: 1,
      numKvHeads: 1,
      headDim: 1,
      hiddenSize: 1,
    });
    assert.equal(result.fused, false);
    assert.match(result.fused ? '' : result.reason, /present/);
  });
});
