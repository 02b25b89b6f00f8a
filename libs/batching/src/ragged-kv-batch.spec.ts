import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { demoTinyInBothLayouts, maxDiff } from '../../../test/support/kv-layouts';
import { prefillCache } from './kv-batch';
import { PaddedKvBatch } from './padded-kv-batch';
import { RaggedKvBatch } from './ragged-kv-batch';
import { StepBuffers } from './step-buffers';

describe('ragged KV batch', () => {
  const models = demoTinyInBothLayouts();

  it('keeps rows intact across column growth', async () => {
    const vocab = models.fused.config.vocabSize;
    const buffers = new StepBuffers();
    const { batch } = await prefillCache(models.fused.session, buffers, [[5, 6, 7], [8]]);
    const cache = batch as RaggedKvBatch;
    const start = cache.capacity;
    const refA = await PaddedKvBatch.prefill(models.exported.session, new StepBuffers(), [[5, 6, 7]]);
    const refB = await PaddedKvBatch.prefill(models.exported.session, new StepBuffers(), [[8]]);
    // Step past the first capacity, so the cache reallocates its columns at least once.
    let last: Float32Array = new Float32Array(0);
    let lastA: Float32Array = new Float32Array(0);
    let lastB: Float32Array = new Float32Array(0);
    for (let t = 0; t < start + 2; t++) {
      last = Float32Array.from((await batch.step([40 + t, 60 + t])).logits!);
      lastA = (await refA.batch.step([40 + t])).logits!;
      lastB = (await refB.batch.step([60 + t])).logits!;
    }
    assert.ok(cache.capacity > start, 'the cache grew');
    assert.ok(maxDiff(last.subarray(0, vocab), lastA) < 1e-3);
    assert.ok(maxDiff(last.subarray(vocab), lastB) < 1e-3);
  });

  it('moves rows in place when the columns shrink and grow again, keeping its buffers', async () => {
    const vocab = models.fused.config.vocabSize;
    const buffers = new StepBuffers();
    const { batch } = await prefillCache(models.fused.session, buffers, [[5, 6, 7], [8]]);
    const cache = batch as RaggedKvBatch;
    const start = cache.capacity;
    for (let t = 0; t < start; t++) await batch.step([40 + t, 60 + t]);
    assert.ok(cache.capacity > start, 'the cache grew');
    const wide = cache.capacity;
    // Two short rows join, and the long ones leave: the columns shrink to what the short rows need.
    const joined = await prefillCache(models.fused.session, buffers, [[11], [12, 13]]);
    batch.concat(joined.batch);
    const kept = (cache as unknown as { backing: Float32Array[] }).backing[0];
    batch.filter([2, 3]);
    assert.ok(cache.capacity < wide, 'the cache shrank');
    const refD = await PaddedKvBatch.prefill(models.exported.session, new StepBuffers(), [[11]]);
    const refE = await PaddedKvBatch.prefill(models.exported.session, new StepBuffers(), [[12, 13]]);
    // ... and grow back past the narrower stride, each step checked against the rows run alone.
    for (let t = 0; t < wide - start; t++) {
      const both = (await batch.step([70 + t, 90 + t])).logits!;
      const d = (await refD.batch.step([70 + t])).logits!;
      const e = (await refE.batch.step([90 + t])).logits!;
      assert.ok(maxDiff(both.subarray(0, vocab), d) < 1e-3, `row D, step ${t}`);
      assert.ok(maxDiff(both.subarray(vocab), e) < 1e-3, `row E, step ${t}`);
    }
    assert.equal(cache.capacity, wide, 'the cache grew back');
    assert.equal((cache as unknown as { backing: Float32Array[] }).backing[0], kept, 'in the same buffers');
  });

  it('computes every prompt position on request, and reduces each logits row in the graph', async () => {
    const vocab = models.fused.config.vocabSize;
    const prompts = [
      [10, 11, 12, 13, 14, 15],
      [20, 21],
    ];
    const all = await prefillCache(models.fused.session, new StepBuffers(), prompts, { allPositions: true });
    const ref = await prefillCache(models.exported.session, new StepBuffers(), prompts);
    for (const [r, prompt] of prompts.entries()) {
      for (let t = 0; t < prompt.length; t++) {
        const a = all.logits!.subarray(all.logitsRow(r, t) * vocab, (all.logitsRow(r, t) + 1) * vocab);
        const b = ref.logits!.subarray(ref.logitsRow(r, t) * vocab, (ref.logitsRow(r, t) + 1) * vocab);
        assert.ok(maxDiff(a, b) < 1e-4, `row ${r} position ${t}`);
      }
    }
    const step = await all.batch.step([7, 8]);
    // The same prefill and step asked for the reductions only: no logits cross the binding, and the reductions are
    // the same.
    const twin = await prefillCache(models.fused.session, new StepBuffers(), prompts, { wantLogits: false });
    assert.equal(twin.logits, null);
    for (const [r, prompt] of prompts.entries()) {
      const last = ref.logits!.subarray(
        ref.logitsRow(r, prompt.length - 1) * vocab,
        (ref.logitsRow(r, prompt.length - 1) + 1) * vocab,
      );
      let best = 0;
      for (let v = 1; v < vocab; v++) if (last[v] > last[best]) best = v;
      const row = twin.logitsRow(r, prompt.length - 1);
      assert.equal(Number(twin.argmax![row]), best, `prefill row ${r}`);
      assert.ok(Math.abs(twin.logitsMax![row] - last[best]) < 1e-4, `prefill row ${r}`);
    }
    const reduced = await twin.batch.step([7, 8], false);
    assert.equal(reduced.logits, null);
    for (let r = 0; r < 2; r++) {
      const row = step.logits!.subarray(r * vocab, (r + 1) * vocab);
      let best = 0;
      for (let v = 1; v < vocab; v++) if (row[v] > row[best]) best = v;
      let sum = 0;
      for (let v = 0; v < vocab; v++) sum += Math.exp(row[v] - row[best]);
      assert.equal(Number(step.argmax![r]), best);
      assert.ok(Math.abs(step.logSumExp![r] - (row[best] + Math.log(sum))) < 1e-4);
      assert.equal(step.logitsMax![r], row[best]);
      assert.equal(Number(reduced.argmax![r]), best);
      assert.ok(Math.abs(reduced.logitsMax![r] - row[best]) < 1e-5);
      assert.ok(Math.abs(reduced.logSumExp![r] - step.logSumExp![r]) < 1e-5);
    }
  });
});
