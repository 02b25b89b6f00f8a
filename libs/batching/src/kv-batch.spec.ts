import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoadedModel } from '@switchyard/models';
import { demoTinyInBothLayouts, maxDiff } from '../../../test/support/kv-layouts';
import { prefillCache } from './kv-batch';
import { PaddedKvBatch } from './padded-kv-batch';
import { RaggedKvBatch } from './ragged-kv-batch';
import { StepBuffers } from './step-buffers';

/** The last-position logits of one prompt run alone on the export, then one step with `next`. */
async function alone(exported: LoadedModel, prompt: number[], next: number): Promise<Float32Array> {
  const { batch } = await PaddedKvBatch.prefill(exported.session, new StepBuffers(), [prompt]);
  return Float32Array.from((await batch.step([next])).logits!);
}

describe('KV batch', () => {
  const models = demoTinyInBothLayouts();

  it('fuses the demo model (and only when asked)', () => {
    assert.equal(models.exported.session.signature.layout, 'padded');
    assert.equal(models.fused.session.signature.layout, 'ragged', models.fused.info.fusionSkipped ?? '');
  });

  for (const layout of ['padded', 'ragged'] as const) {
    it(`gives each row its own logits after prefill, concat, step and filter (${layout})`, async () => {
      const model = layout === 'padded' ? models.exported : models.fused;
      const vocab = model.config.vocabSize;
      const prompts = [
        [10, 11, 12, 13, 14, 15],
        [20, 21],
        [30, 31, 32, 33],
      ];
      const next = [100, 200, 300];
      const expected = await Promise.all(prompts.map((p, i) => alone(models.exported, p, next[i])));

      const buffers = new StepBuffers();
      const first = await prefillCache(model.session, buffers, prompts.slice(0, 2));
      const batch = first.batch;
      assert.ok(layout === 'padded' ? batch instanceof PaddedKvBatch : batch instanceof RaggedKvBatch);
      // Each row's last prompt position has its logits row: after the padding (padded, every position computed),
      // or one row per batch row (ragged, last positions only).
      assert.deepEqual(
        [first.logitsRow(0, 5), first.logitsRow(1, 1), first.logitsRow(1, 0)],
        layout === 'padded' ? [5, 11, 10] : [0, 1, -1],
      );
      const joined = await prefillCache(model.session, buffers, prompts.slice(2));
      batch.concat(joined.batch);
      assert.equal(batch.size, 3);
      assert.equal(batch.width, 6);

      const logits = (await batch.step(next)).logits!;
      for (let r = 0; r < 3; r++) {
        assert.ok(maxDiff(logits.subarray(r * vocab, (r + 1) * vocab), expected[r]) < 1e-4, `row ${r}`);
      }

      // Dropping the longest row shrinks the width to the longest remaining row (2 + 1 and 4 + 1 tokens).
      batch.filter([1, 2]);
      assert.equal(batch.size, 2);
      assert.equal(batch.width, 5);
      const afterFilter = (await batch.step([7, 8])).logits!;
      const { batch: ref } = await PaddedKvBatch.prefill(models.exported.session, new StepBuffers(), [[20, 21]]);
      await ref.step([200]);
      const refLogits = (await ref.step([7])).logits!;
      assert.ok(maxDiff(afterFilter.subarray(0, vocab), refLogits) < 1e-4);
    });
  }
});
