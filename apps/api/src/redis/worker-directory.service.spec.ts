import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { Heartbeat, RedisNames, removeWorkerEntries, writeWorkerEntries } from '@switchyard/protocol';
import type { RedisService } from './redis.service';
import { WorkerDirectory } from './worker-directory.service';

const URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(URL);
const names = new RedisNames(`sy-test-${randomUUID().slice(0, 8)}:`);

/** The directory on a clock the test moves; it counts the reads it sends to Redis. */
class TestDirectory extends WorkerDirectory {
  clock = 1_000_000;
  reads = 0;

  constructor() {
    const counting = new Proxy(redis, {
      get: (target, key, receiver) => {
        if (key === 'zrange') this.reads++;
        const value = Reflect.get(target, key, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    super({ redis: counting, names } as unknown as RedisService);
  }

  protected override now(): number {
    return this.clock;
  }
}

function heartbeat(id: string, models: Heartbeat['models']): Heartbeat {
  const now = Date.now();
  return {
    id,
    pid: 1,
    host: 'test',
    startedAt: now,
    at: now,
    memory: { used: 0, budget: 1 },
    draining: false,
    eventLoop: { maxMs: 0, worstMs: 0 },
    models,
  };
}

const loaded = (id: string): Heartbeat['models'][number] => ({
  id,
  state: 'loaded',
  bytes: 1,
  pinned: false,
  running: 0,
  waiting: 0,
  queued: 0,
  oldestQueuedMs: 0,
});

async function beat(worker: string, models: Heartbeat['models']): Promise<void> {
  const entries = { heartbeat: JSON.stringify(heartbeat(worker, models)), metrics: '[]' };
  await writeWorkerEntries(redis.multi(), names, worker, entries, 60_000).exec();
}

describe('worker directory', () => {
  after(async () => {
    await removeWorkerEntries(redis, names, 'w1');
    await redis.quit();
  });

  it('answers that a model is held from a recent read while it reads again; an absent one is read fresh', async () => {
    const directory = new TestDirectory();
    await beat('w1', [loaded('m')]);
    assert.equal((await directory.holders('m')).loaded.length, 1);
    assert.equal(directory.reads, 1);

    await removeWorkerEntries(redis, names, 'w1'); // the worker left
    directory.clock += 100;
    assert.equal((await directory.holders('m')).loaded.length, 1, 'a read 100 ms old is fresh');
    assert.equal(directory.reads, 1);

    directory.clock += 900;
    // 1 s old: the answer is the last read's, at once, and a new read is under way.
    assert.equal((await directory.holders('m')).loaded.length, 1);
    assert.equal(directory.reads, 2);
    const beats = await directory.live(); // shares the read under way
    assert.equal(directory.reads, 2);
    assert.deepEqual(beats, []);
    assert.deepEqual(await directory.holders('m'), { loaded: [], loading: [], live: 0 });
    assert.equal(directory.reads, 2, 'the new read is fresh');

    await beat('w1', [loaded('m')]);
    directory.clock += 300;
    // The last read found no worker: a negative answer is never served stale.
    assert.equal((await directory.holders('m')).loaded.length, 1);
    assert.equal(directory.reads, 3);

    directory.clock += 2_500;
    await removeWorkerEntries(redis, names, 'w1');
    // Too old even for a positive answer: read before answering.
    assert.equal((await directory.holders('m')).live, 0);
    assert.equal(directory.reads, 4);
  });

  it('keeps its read fresh in the background, with no request asking', async () => {
    const directory = new TestDirectory();
    directory.keepFresh(5);
    try {
      const deadline = Date.now() + 5000;
      while (directory.reads < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.ok(directory.reads >= 3, `${directory.reads} background reads`);
    } finally {
      directory.onModuleDestroy();
    }
  });
});
