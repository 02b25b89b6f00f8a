/**
 * What happens to requests when things go wrong, on real worker processes: a worker killed mid-batch, a
 * client that cancels, a worker told to stop. Also the event loop under a full batch of demo-small.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { StreamEvent } from '@switchyard/protocol';
import { generatedIds, Platform, waitFor } from './support/platform';
import { loadGoldens, modelDir } from './support/repo';

describe('worker recovery: SIGKILL mid-batch', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-tiny');
  const lock = ['--lock-duration', '2s'];

  before(async () => {
    // w1 takes four jobs at a time, so it still holds unfinished work when it is killed
    await Promise.all([
      platform.startWorker('w1', ['--preload', modelDir('demo-tiny'), '--max-batch-size', '4', ...lock]),
      platform.startWorker('w2', ['--preload', modelDir('demo-tiny'), ...lock]),
    ]);
    await Promise.all([platform.waitForLoaded('w1', 'demo-tiny'), platform.waitForLoaded('w2', 'demo-tiny')]);
  });
  after(() => platform.close());

  it('re-runs the dead worker’s requests on the other worker, with the golden ids', async () => {
    const w1 = platform.workers.find((w) => w.id === 'w1')!;
    const cases = Array.from({ length: 20 }, (_, i) => goldens.cases[i % goldens.cases.length]);
    const ids = await Promise.all(
      cases.map((c) => platform.enqueue('demo-tiny', c.prompt_ids, { maxNewTokens: goldens.max_new_tokens })),
    );
    const startedOn = new Map<string, string[]>();
    // a cast, not a type: TypeScript does not see the assignment in the callback, and would narrow it to null
    let killed = null as Promise<unknown> | null;
    const streams = await Promise.all(
      ids.map((id) =>
        platform.readStream(id, 120_000, (event: StreamEvent) => {
          if (event.type !== 'start') return;
          startedOn.set(id, [...(startedOn.get(id) ?? []), event.worker]);
          if (event.worker === 'w1' && !killed) {
            // freeze it at once, then kill it: what it held is exactly what it had not finished
            w1.child.kill('SIGSTOP');
            w1.child.kill('SIGKILL');
            killed = w1.exited;
          }
        }),
      ),
    );
    assert.equal(await killed, 'SIGKILL');
    streams.forEach((events, i) => assert.deepEqual(generatedIds(events), cases[i].greedy_ids, `request ${i}`));
    const rerun = ids.filter((_, i) => streams[i][0].attempt > 1);
    assert.ok(rerun.length > 0, 'no request was running on the killed worker');
    for (const id of rerun) {
      const final = streams[ids.indexOf(id)].at(-1)!;
      assert.equal(final.type, 'final');
      // A job w1 had fetched but not yet announced when it froze has no w1 start entry; any it has comes first.
      const starts = startedOn.get(id) ?? [];
      assert.equal(starts.at(-1), 'w2', `request ${id} ran on ${starts.join(', ')}`);
      assert.ok(
        starts.slice(0, -1).every((w) => w === 'w1'),
        `request ${id} ran on ${starts.join(', ')}`,
      );
    }
    assert.ok(
      rerun.some((id) => startedOn.get(id)?.[0] === 'w1'),
      'a request that had started on w1 ran again on w2',
    );
  });
});

describe('worker recovery: cancellation', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-small');

  before(async () => {
    await platform.startWorker('c1', ['--preload', modelDir('demo-small')]);
    await platform.waitForLoaded('c1', 'demo-small');
  });
  after(() => platform.close());

  it('stops a running request’s stream within one step, and the batch shrinks', async () => {
    const long = { maxNewTokens: 400, ignoreEos: true };
    const ids = await Promise.all(
      [0, 1, 2].map((i) => platform.enqueue('demo-small', goldens.cases[i].prompt_ids, long)),
    );
    const [target, ...others] = ids;
    let tokens = 0;
    let cancelledAt: Promise<string> | null = null;
    const key = platform.names.stream(target);
    const targetStream = platform.readStream(target, 60_000, (event) => {
      if (event.type !== 'token' || ++tokens !== 5) return;
      cancelledAt = (async () => {
        await platform.cancel('demo-small', target);
        // the last entry the worker had written when the cancel went out
        const [[lastId]] = await platform.redis.xrevrange(key, '+', '-', 'COUNT', 1);
        return lastId;
      })();
    });
    const othersDone = Promise.all(others.map((id) => platform.readStream(id)));
    const events = await targetStream;
    const last = events.at(-1)!;
    assert.equal(last.type, 'error');
    assert.equal(last.type === 'error' && last.errorType, 'cancelled');
    const after = await platform.redis.xrange(key, `(${await cancelledAt!}`, '+');
    const lateTokens = after.filter(([, fields]) => fields[1].includes('"type":"token"')).length;
    assert.ok(lateTokens <= 1, `${lateTokens} tokens were streamed after the cancel`);

    const beat = await waitFor('the batch without the cancelled row', async () => {
      const b = await platform.heartbeat('c1');
      return b?.models[0].running === 2 ? b : undefined;
    });
    assert.equal(beat.models[0].running, 2);
    const rest = await othersDone;
    for (const stream of rest) assert.equal(generatedIds(stream).length, 400);
  });

  it('a request whose cancel came before its job started ends as cancelled within a few steps', async () => {
    // the canceller could not remove the job (a worker had just taken it): the key is all the worker goes on. The
    // check rides on the start entry's write, so the prefill does not wait for it and may produce a token or two.
    const id = randomUUID();
    await platform.redis.set(platform.names.cancel(id), '1', 'EX', 300);
    await platform.enqueue('demo-small', goldens.cases[4].prompt_ids, { maxNewTokens: 400, ignoreEos: true }, 0, id);
    const events = await platform.readStream(id, 60_000);
    const last = events.at(-1)!;
    assert.equal(last.type === 'error' && last.errorType, 'cancelled');
    const tokens = events.filter((e) => e.type === 'token').length;
    assert.ok(tokens < 10, `${tokens} of 400 tokens were generated for a request cancelled before it started`);
  });

  it('a request cancelled before it starts is removed from the queue', async () => {
    // a delayed job stands for one that waits behind a full batch, without a race against the worker
    const id = await platform.enqueue('demo-small', goldens.cases[3].prompt_ids, { maxNewTokens: 50 }, 60_000);
    assert.equal(await platform.queue('demo-small').getJobState(id), 'delayed');
    await platform.cancel('demo-small', id);
    assert.equal(await platform.queue('demo-small').getJob(id), undefined);
    assert.equal(await platform.redis.exists(platform.names.stream(id)), 0);
  });
});

describe('worker recovery: SIGTERM drains', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-small');

  before(async () => {
    await platform.startWorker('d1', ['--preload', modelDir('demo-small')]);
    await platform.waitForLoaded('d1', 'demo-small');
  });
  after(() => platform.close());

  it('finishes the running requests, takes no new job, and exits 0', async () => {
    const d1 = platform.workers[0];
    const ids = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        platform.enqueue('demo-small', goldens.cases[i].prompt_ids, { maxNewTokens: 300, ignoreEos: true }),
      ),
    );
    const started = new Set<string>();
    let allStarted!: () => void;
    const running = new Promise<void>((resolve) => (allStarted = resolve));
    const streams = Promise.all(
      ids.map((id) =>
        platform.readStream(id, 60_000, (event) => {
          if (event.type === 'token') started.add(id);
          if (started.size === ids.length) allStarted();
        }),
      ),
    );
    await running;
    assert.notEqual(await platform.redis.zscore(platform.names.workers, 'd1'), null, 'a live worker is indexed');
    d1.child.kill('SIGTERM');
    await waitFor('the draining heartbeat', async () => (await platform.heartbeat('d1'))?.draining);
    const late = await Promise.all(
      [4, 5].map((i) => platform.enqueue('demo-small', goldens.cases[i].prompt_ids, { maxNewTokens: 8 })),
    );
    assert.equal(await d1.exited, 0, d1.output().split('\n').slice(-30).join('\n'));
    for (const events of await streams) {
      assert.equal(events.at(-1)!.type, 'final');
      assert.equal(generatedIds(events).length, 300);
      assert.equal(events[0].attempt, 1);
    }
    assert.equal(await platform.queue('demo-small').getWaitingCount(), 2);
    for (const id of late) assert.equal(await platform.redis.exists(platform.names.stream(id)), 0);
    assert.match(d1.output(), /drained in \d+ ms/);
    // it left the registry: no heartbeat, and no longer in the workers' index
    assert.equal(await platform.redis.exists(platform.names.worker('d1')), 0);
    assert.equal(await platform.redis.zscore(platform.names.workers, 'd1'), null);
  });
});

describe('worker: the event loop under a full batch', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-small');

  before(() => platform.startWorker('e1', ['--preload', modelDir('demo-small'), '--intra-op-threads', '2']));
  after(() => platform.close());

  it('never blocks long enough to risk a BullMQ lock (64 rows of demo-small)', async (t) => {
    await platform.waitForLoaded('e1', 'demo-small');
    const ids = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        platform.enqueue('demo-small', goldens.cases[i % goldens.cases.length].prompt_ids, {
          maxNewTokens: 128,
          ignoreEos: true,
        }),
      ),
    );
    let worst = 0;
    let maxBatch = 0;
    let polling = true;
    const poll = (async () => {
      while (polling) {
        const beat = await platform.heartbeat('e1');
        worst = Math.max(worst, beat?.eventLoop.maxMs ?? 0);
        maxBatch = Math.max(maxBatch, beat?.models[0]?.running ?? 0);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const streams = await Promise.all(ids.map((id) => platform.readStream(id)));
    polling = false;
    await poll;
    for (const events of streams) assert.equal(generatedIds(events).length, 128);
    const loaded = (await platform.events()).find((e) => e.type === 'loaded');
    t.diagnostic(`worst event-loop delay during the batch: ${worst.toFixed(1)} ms (largest batch seen: ${maxBatch})`);
    t.diagnostic(`demo-small load time: ${loaded?.ms} ms`);
    assert.ok(maxBatch >= 32, `the batch only reached ${maxBatch} rows`);
    // BullMQ renews a lock at half its duration (15 s by default): a 1 s stall is far from losing it
    assert.ok(worst < 1000, `the event loop stalled for ${worst} ms`);
  });
});
