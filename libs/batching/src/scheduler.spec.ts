import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_SCHEDULER_CONFIG,
  EMPTY_BATCH,
  projectedTokens,
  QueueEntry,
  Scheduler,
  SchedulerConfig,
} from './scheduler';

function entry(inputLength: number, maxNewTokens: number, cancelled = false): QueueEntry {
  return { inputLength, maxNewTokens, cancelled };
}

function scheduler(config: Partial<SchedulerConfig> = {}): Scheduler<QueueEntry> {
  return new Scheduler({ ...DEFAULT_SCHEDULER_CONFIG, ...config });
}

describe('scheduler', () => {
  it('admits in arrival order within the padded token budget', () => {
    const s = scheduler({ maxBatchTotalTokens: 100 });
    const a = entry(10, 11); // alone: 1 × (10 + 10) = 20
    const b = entry(20, 11); // with a: 2 × (20 + 10) = 60
    const c = entry(5, 41); // with a, b: 3 × (20 + 40) = 180 > 100
    for (const e of [a, b, c]) s.enqueue(e);
    const { admitted, shape } = s.nextBatch(EMPTY_BATCH);
    assert.deepEqual(admitted, [a, b]);
    assert.equal(projectedTokens(shape), 60);
    assert.equal(s.waiting, 1);
  });

  it('counts the running batch, padded to the widest row, in the budget', () => {
    const s = scheduler({ maxBatchTotalTokens: 200, waitingServedRatio: 0 });
    s.enqueue(entry(4, 5));
    // Running: 4 rows at width 30, up to 10 more tokens each: 160. One more row makes 5 × 40 = 200.
    assert.equal(s.nextBatch({ size: 4, width: 30, maxRemaining: 10 }).admitted.length, 1);
    s.enqueue(entry(4, 5));
    // A wider running batch leaves no room: 5 × 41 = 205.
    assert.equal(s.nextBatch({ size: 4, width: 31, maxRemaining: 10 }).admitted.length, 0);
  });

  it('bounds one prefill by max_batch_prefill_tokens and the batch by max_batch_size', () => {
    const s = scheduler({ maxBatchPrefillTokens: 64, maxBatchSize: 3 });
    for (let i = 0; i < 5; i++) s.enqueue(entry(20, 5));
    assert.equal(s.nextBatch(EMPTY_BATCH).admitted.length, 3); // 3 × 20 = 60 <= 64, and at most 3 rows
    const t = scheduler({ maxBatchPrefillTokens: 64 });
    for (let i = 0; i < 5; i++) t.enqueue(entry(20, 5));
    assert.equal(t.nextBatch(EMPTY_BATCH).admitted.length, 3); // the 4th would make 80 prefill tokens
  });

  it('admits within the prefill budget left, and reports the padded prefill tokens', () => {
    const s = scheduler({ maxBatchPrefillTokens: 100 });
    for (const length of [20, 30, 10]) s.enqueue(entry(length, 5));
    const first = s.nextBatch(EMPTY_BATCH, { prefillBudget: 70, decodingRows: 0 });
    assert.equal(first.admitted.length, 2, '2 × 30 = 60 <= 70; a third would make 90');
    assert.equal(first.prefillTokens, 60);
    assert.equal(s.nextBatch(first.shape, { prefillBudget: 9, decodingRows: 0 }).admitted.length, 0, 'it needs 10');
    const last = s.nextBatch(first.shape, { prefillBudget: 10, decodingRows: 0 });
    assert.equal(last.admitted.length, 1);
    assert.equal(last.prefillTokens, 10);
    assert.equal(s.nextBatch(EMPTY_BATCH).prefillTokens, 0, 'nothing left to admit');
  });

  it('counts only the rows that were decoding as paused by a further prefill', () => {
    const s = scheduler({ waitingServedRatio: 0.5 });
    const running = { size: 8, width: 10, maxRemaining: 10 };
    for (let i = 0; i < 2; i++) s.enqueue(entry(5, 5));
    assert.equal(s.nextBatch(running).admitted.length, 0, '2 waiting < 0.5 × 8 running rows');
    const since = { prefillBudget: 100, decodingRows: 4 };
    assert.equal(s.nextBatch(running, since).admitted.length, 2, '2 waiting >= 0.5 × 4 rows that were decoding');
  });

  it('pauses a running batch only for enough waiting requests, or after max_waiting_tokens steps', () => {
    const s = scheduler({ waitingServedRatio: 0.5, maxWaitingTokens: 3 });
    const running = { size: 8, width: 10, maxRemaining: 10 };
    for (let i = 0; i < 3; i++) s.enqueue(entry(5, 5));
    assert.equal(s.nextBatch(running).admitted.length, 0, '3 waiting < 0.5 × 8');
    s.noteDecodeStep();
    s.noteDecodeStep();
    assert.equal(s.nextBatch(running).admitted.length, 0);
    s.noteDecodeStep();
    assert.equal(s.nextBatch(running).admitted.length, 3, 'after 3 steps they go in whatever their number');
    for (let i = 0; i < 4; i++) s.enqueue(entry(5, 5));
    assert.equal(s.nextBatch(running).admitted.length, 4, '4 waiting >= 0.5 × 8');
  });

  it('drops cancelled entries instead of admitting them', () => {
    const s = scheduler();
    const gone = entry(5, 5, true);
    const live = entry(5, 5);
    s.enqueue(gone);
    s.enqueue(live);
    const { admitted, dropped } = s.nextBatch(EMPTY_BATCH);
    assert.deepEqual(admitted, [live]);
    assert.deepEqual(dropped, [gone]);
  });

  it('says when a request can never fit', () => {
    const s = scheduler({ maxBatchTotalTokens: 100, maxBatchPrefillTokens: 50 });
    assert.equal(s.fitsAlone({ inputLength: 50, maxNewTokens: 51 }), null);
    assert.match(s.fitsAlone({ inputLength: 51, maxNewTokens: 1 })!, /max_batch_prefill_tokens/);
    assert.match(s.fitsAlone({ inputLength: 50, maxNewTokens: 52 })!, /max_batch_total_tokens/);
  });
});
