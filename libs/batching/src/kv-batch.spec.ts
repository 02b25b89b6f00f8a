import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, LoadedModel } from '@switchyard/models';
import { modelDir } from '../../../test/support/repo';
import { KvBatch, StepBuffers } from './kv-batch';

let model: LoadedModel;

/** The last-position logits of one prompt run alone, then one step with `next`. */
async function alone(prompt: number[], next: number): Promise<Float32Array> {
  const { batch } = await KvBatch.prefill(model.session, new StepBuffers(), [prompt]);
  return Float32Array.from((await batch.step([next])).data as Float32Array);
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe('KV batch', () => {
  before(async () => {
    model = await loadModel(modelDir('demo-tiny'));
  });
  after(async () => model.release());

  it('gives each row its own logits after prefill, concat, step and filter', async () => {
    const vocab = model.config.vocabSize;
    const prompts = [
      [10, 11, 12, 13, 14, 15],
      [20, 21],
      [30, 31, 32, 33],
    ];
    const next = [100, 200, 300];
    const expected = await Promise.all(prompts.map((p, i) => alone(p, next[i])));

    const buffers = new StepBuffers();
    const { batch } = await KvBatch.prefill(model.session, buffers, prompts.slice(0, 2));
    const joined = await KvBatch.prefill(model.session, buffers, prompts.slice(2));
    batch.concat(joined.batch);
    assert.equal(batch.size, 3);
    assert.equal(batch.width, 6);
    assert.deepEqual(
      [0, 1, 2].map((r) => batch.rowLength(r)),
      [6, 2, 4],
    );

    const logits = (await batch.step(next)).data as Float32Array;
    for (let r = 0; r < 3; r++) {
      assert.ok(maxDiff(logits.subarray(r * vocab, (r + 1) * vocab), expected[r]) < 1e-4, `row ${r}`);
    }

    // Dropping the longest row lets the batch trim the columns that are now padding in every row.
    batch.filter([1, 2]);
    assert.equal(batch.size, 2);
    assert.equal(batch.width, 5, '7 columns less the 2 that only row 0 used');
    const after = (await batch.step([7, 8])).data as Float32Array;
    const { batch: ref } = await KvBatch.prefill(model.session, new StepBuffers(), [[20, 21]]);
    await ref.step([200]);
    const refLogits = (await ref.step([7])).data as Float32Array;
    assert.ok(maxDiff(after.subarray(0, vocab), refLogits) < 1e-4);
  });
});
