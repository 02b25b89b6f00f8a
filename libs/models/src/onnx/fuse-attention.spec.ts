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
import { bytesField, decode, encode, first, firstString, Message, messageField, strings, varintField } from './protobuf';

describe('protobuf wire codec', () => {
  it('round-trips varints (negative ones as 10 bytes), strings, bytes and nested messages', () => {
    const nested: Message = [varintField(1, 300), bytesField(2, 'héllo')];
    const message: Message = [
      varintField(1, 0),
      varintField(2, -1),
      varintField(3, 2n ** 40n),
      bytesField(4, new Uint8Array([0, 255, 7])),
      messageField(5, nested),
      bytesField(6, 'a'),
      bytesField(6, 'b'),
    ];
    const bytes = encode(message);
    const back = decode(bytes);
    assert.equal(back.length, message.length);
    assert.equal(back[0].value, 0n);
    assert.equal(BigInt.asIntN(64, back[1].value as bigint), -1n);
    assert.equal(back[2].value, 2n ** 40n);
    assert.deepEqual([...(back[3].value as Uint8Array)], [0, 255, 7]);
    const inner = decode(back[4].value as Uint8Array);
    assert.equal(first(inner, 1)?.value, 300n);
    assert.equal(firstString(inner, 2), 'héllo');
    assert.deepEqual(strings(back, 6), ['a', 'b']);
    // Encoding what was decoded gives the same bytes: fields the rewrite does not touch survive as they were.
    assert.deepEqual(encode(back), bytes);
  });

  it('re-encodes a real ONNX graph byte for byte', () => {
    const original = readFileSync(join(modelDir('demo-tiny'), 'onnx/model.onnx'));
    assert.ok(Buffer.from(encode(decode(original))).equals(original));
  });

  it('refuses truncated input', () => {
    const bytes = encode([bytesField(1, 'hello')]);
    assert.throws(() => decode(bytes.subarray(0, bytes.length - 2)), /truncated/);
  });
});

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
      assert.ok(external.length > 0 && external.every((t) => t.source.kind === 'external' && t.source.file.endsWith('model.onnx_data')));
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
    const result = fuseAttention(readGraph(file), { numLayers: 1, numHeads: 1, numKvHeads: 1, headDim: 1, hiddenSize: 1 });
    assert.equal(result.fused, false);
    assert.match(result.fused ? '' : result.reason, /present/);
  });
});
