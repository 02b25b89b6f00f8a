import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { loadModel, LoadedModel } from '@switchyard/models';
import type { DecoderSession, ForwardInput, ForwardOutput } from '@switchyard/models';
import { modelDir } from '../../../test/support/repo';
import { prefillCache } from './kv-batch';
import { PaddedKvBatch } from './padded-kv-batch';
import { StepBuffers } from './step-buffers';

/**
 * A one-layer, one-head, headDim-1 session whose cache holds each position's token id (0 for padding): the presents
 * are the past with the new ids appended, so the cache's contents show where every row's tokens sit. It records the
 * mask and positions it was fed.
 */
function fakeSession(): { session: DecoderSession; fed: { mask: bigint[]; positions: bigint[] }[] } {
  const fed: { mask: bigint[]; positions: bigint[] }[] = [];
  const forward = (input: ForwardInput): Promise<ForwardOutput> => {
    fed.push({ mask: [...input.attentionMask!], positions: [...input.positionIds] });
    const { batchSize: rows, seqLen, pastLen } = input;
    const width = pastLen + seqLen;
    const presents = [0, 1].map((layer) => {
      const data = new Float32Array(rows * width);
      for (let r = 0; r < rows; r++) {
        if (input.past)
          data.set((input.past[layer].data as Float32Array).subarray(r * pastLen, (r + 1) * pastLen), r * width);
        for (let t = 0; t < seqLen; t++) data[r * width + pastLen + t] = Number(input.inputIds[r * seqLen + t]);
      }
      return new ort.Tensor('float32', data, [rows, 1, width, 1]);
    });
    const logits = new ort.Tensor('float32', new Float32Array(rows * seqLen), [rows, seqLen, 1]);
    return Promise.resolve({ logits, logSumExp: null, argmax: null, logitsMax: null, presents });
  };
  const session = { signature: { layout: 'padded', kvDtype: 'float32', numLayers: 1 }, forward };
  return { session: session as unknown as DecoderSession, fed };
}

/** The cache's rows, as token ids (0 for padding), layer 0's keys. */
function rows(batch: PaddedKvBatch): number[][] {
  const kv = (batch as unknown as { kv: ort.Tensor[] }).kv[0];
  const [n, , width] = kv.dims;
  const data = kv.data as Float32Array;
  return Array.from({ length: n }, (_, r) => [...data.subarray(r * width, (r + 1) * width)]);
}

describe('padded KV batch', () => {
  it('left-pads a prefill, and feeds each row its mask and positions after its padding', async () => {
    const { session, fed } = fakeSession();
    const { batch, logitsRow } = await PaddedKvBatch.prefill(session, new StepBuffers(), [[5, 6, 7], [8]]);
    assert.deepEqual(rows(batch as PaddedKvBatch), [
      [5, 6, 7],
      [0, 0, 8],
    ]);
    assert.deepEqual(fed[0].mask, [1n, 1n, 1n, 0n, 0n, 1n]);
    assert.deepEqual(fed[0].positions, [0n, 1n, 2n, 0n, 0n, 0n]);
    assert.deepEqual([logitsRow(0, 2), logitsRow(1, 0)], [2, 5]);
    await batch.step([9, 10]);
    assert.deepEqual(fed[1].mask, [1n, 1n, 1n, 1n, 0n, 0n, 1n, 1n]);
    assert.deepEqual(fed[1].positions, [3n, 1n]);
    assert.equal(batch.width, 4);
  });

  it('pads the narrower batch on the left when it concatenates, and trims shared padding when rows leave', async () => {
    const { session, fed } = fakeSession();
    const buffers = new StepBuffers();
    const { batch } = await PaddedKvBatch.prefill(session, buffers, [[1, 2, 3, 4]]);
    const { batch: other } = await PaddedKvBatch.prefill(session, buffers, [[5], [6, 7]]);
    batch.concat(other);
    assert.equal(other.size, 0, 'the joined batch is consumed');
    assert.deepEqual(rows(batch as PaddedKvBatch), [
      [1, 2, 3, 4],
      [0, 0, 0, 5],
      [0, 0, 6, 7],
    ]);
    await batch.step([8, 9, 10]);
    assert.deepEqual(fed.at(-1)!.positions, [4n, 1n, 2n]);
    // The longest row leaves: the two columns that are padding in both remaining rows go.
    batch.filter([1, 2]);
    assert.equal(batch.width, 3);
    assert.deepEqual(rows(batch as PaddedKvBatch), [
      [0, 5, 9],
      [6, 7, 10],
    ]);
    await batch.step([11, 12]);
    assert.deepEqual(fed.at(-1)!.mask, [0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n]);
    assert.deepEqual(fed.at(-1)!.positions, [2n, 3n]);
  });

  it('keeps its tensors when nothing leaves and nothing can be trimmed', async () => {
    const { session } = fakeSession();
    const { batch } = await PaddedKvBatch.prefill(session, new StepBuffers(), [
      [1, 2],
      [3, 4],
    ]);
    const before = (batch as unknown as { kv: ort.Tensor[] }).kv;
    batch.filter([0, 1]);
    assert.equal((batch as unknown as { kv: ort.Tensor[] }).kv, before);
  });

  describe('on the demo model', () => {
    let exported: LoadedModel;
    before(async () => {
      exported = await loadModel(modelDir('demo-tiny'), { fuseAttention: false });
    });
    after(async () => {
      await exported.release();
    });

    it('returns the logits whatever is asked, on a session without the reductions', async () => {
      const { batch } = await prefillCache(exported.session, new StepBuffers(), [[10, 11, 12]]);
      const step = await batch.step([7], false);
      assert.equal(step.logits!.length, exported.config.vocabSize);
      assert.equal(step.logitsMax, null);
    });
  });
});
