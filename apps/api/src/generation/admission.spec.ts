import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Heartbeat } from '@switchyard/protocol';
import { ANONYMOUS } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import { Admission } from './admission';

function admission(options: { cap?: number; waits?: number[][] } = {}) {
  const gauge: number[] = [];
  const reserved: number[] = [];
  /** One worker per list, holding model `m` and each other model with these oldest queue waits. */
  const loaded = (options.waits ?? []).map(
    (waits) =>
      ({
        models: waits.map((oldestQueuedMs, i) => ({ id: i === 0 ? 'm' : `other${i}`, oldestQueuedMs })),
      }) as unknown as Heartbeat,
  );
  const a = new Admission(
    { inFlight: { set: (v: number) => gauge.push(v) } as never },
    { reserve: (_, tokens) => (reserved.push(tokens), Promise.resolve({ settle: () => undefined })) },
    { holders: () => Promise.resolve({ loaded, loading: [], live: loaded.length }) },
    { maxConcurrentRequests: options.cap ?? 2, fallbackQueueWaitMs: 1000 },
  );
  return { a, gauge, reserved };
}

describe('admission', () => {
  it('takes in-flight slots up to the cap, answers 429 past it, and reports the count', () => {
    const { a, gauge } = admission({ cap: 2 });
    a.admit();
    a.admit();
    assert.throws(
      () => a.admit(),
      (e: ApiError) => e.status === 429 && e.errorType === 'overloaded',
    );
    a.release();
    a.admit();
    assert.deepEqual(gauge, [1, 2, 1, 2]);
  });

  it("reserves the request's tokens against the key's limits", async () => {
    const { a, reserved } = admission();
    (await a.reserve(ANONYMOUS, 42)).settle(10);
    assert.deepEqual(reserved, [42]);
  });

  it('finds a model overloaded only when its queue waits too long on every worker that holds it', async () => {
    assert.equal(await admission({ waits: [] }).a.overloaded('m'), false, 'no worker holds it');
    assert.equal(await admission({ waits: [[1500], [200]] }).a.overloaded('m'), false, 'one worker keeps up');
    assert.equal(await admission({ waits: [[1500], [1001, 0]] }).a.overloaded('m'), true);
    assert.equal(await admission({ waits: [[1000]] }).a.overloaded('m'), false, 'at the limit is not past it');
  });
});
