import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisNames } from './protocol';
import {
  INDEX_GRACE_MS,
  parseHeartbeat,
  readWorkerEntries,
  removeWorkerEntries,
  writeWorkerEntries,
} from './worker-registry';

const URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(URL);
const used: RedisNames[] = [];

function freshNames(): RedisNames {
  const names = new RedisNames(`sy-test-${randomUUID().slice(0, 8)}:`);
  used.push(names);
  return names;
}

async function beat(names: RedisNames, id: string, ttlMs: number, now = Date.now()): Promise<void> {
  await writeWorkerEntries(
    redis.multi(),
    names,
    id,
    { heartbeat: `beat ${id}`, metrics: `metrics ${id}` },
    ttlMs,
    now,
  ).exec();
}

const heartbeats = (names: RedisNames) => readWorkerEntries(redis, names, (id) => names.worker(id));

describe('worker registry', () => {
  after(async () => {
    for (const names of used) {
      const keys = await redis.keys(`${names.prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    await redis.quit();
  });

  it('finds each live worker, with its heartbeat or its metrics, sorted by id', async () => {
    const names = freshNames();
    await beat(names, 'w-b', 10_000);
    await beat(names, 'w-a', 10_000);
    assert.deepEqual(await heartbeats(names), [
      ['w-a', 'beat w-a'],
      ['w-b', 'beat w-b'],
    ]);
    assert.deepEqual(await readWorkerEntries(redis, names, (id) => names.metrics(id)), [
      ['w-a', 'metrics w-a'],
      ['w-b', 'metrics w-b'],
    ]);
  });

  it('leaves out a worker whose heartbeat expired, though its id is still indexed', async () => {
    const names = freshNames();
    await beat(names, 'alive', 10_000);
    await beat(names, 'dead', 10_000);
    // what its TTL does when it stops beating; to a reader an expired key and a deleted one are the same
    await redis.del(names.worker('dead'));
    assert.notEqual(await redis.zscore(names.workers, 'dead'), null);
    assert.deepEqual(await heartbeats(names), [['alive', 'beat alive']]);
  });

  it('reads only indexed workers: a key that looks like a heartbeat is not one', async () => {
    const names = freshNames();
    await redis.set(names.worker('stray'), 'not a worker');
    assert.deepEqual(await heartbeats(names), []);
  });

  it("drops a dead worker's id once its expiry is older than the grace, at another worker's heartbeat", async () => {
    const names = freshNames();
    const now = Date.now();
    await beat(names, 'long-gone', 1000, now - INDEX_GRACE_MS - 2000);
    await beat(names, 'recent', 1000, now - INDEX_GRACE_MS + 5000);
    await beat(names, 'alive', 10_000, now);
    assert.deepEqual((await redis.zrange(names.workers, 0, -1)).sort(), ['alive', 'recent']);
  });

  it('removes a leaving worker: keys and index', async () => {
    const names = freshNames();
    await beat(names, 'leaving', 10_000);
    await removeWorkerEntries(redis, names, 'leaving');
    assert.equal(await redis.exists(names.worker('leaving'), names.metrics('leaving'), names.workers), 0);
    assert.deepEqual(await heartbeats(names), []);
  });

  it('parses a heartbeat, and refuses what is not one instead of handing it to routing', () => {
    const beat = {
      id: 'w1',
      pid: 1,
      host: 'h',
      startedAt: 0,
      at: 0,
      memory: { used: 0, budget: 1 },
      draining: false,
      eventLoop: { maxMs: 0, worstMs: 0 },
      models: [],
    };
    assert.deepEqual(parseHeartbeat(JSON.stringify(beat)), beat);
    const model = {
      id: 'm',
      state: 'parked',
      bytes: 1,
      pinned: true,
      running: 0,
      waiting: 0,
      queued: 2,
      oldestQueuedMs: 5,
    };
    const full = { ...beat, incarnation: 'i1', models: [{ ...model, dtype: 'q8', attention: 'fused' }] };
    assert.deepEqual(parseHeartbeat(JSON.stringify(full)), full);
    for (const bad of [
      '{"id": "w1", "models": [',
      'null',
      '"w1"',
      '{"id": 7, "models": [], "memory": {}}',
      '{"id": "w1", "memory": {}}',
      '{"id": "w1", "models": []}',
      JSON.stringify({ ...beat, memory: { used: 0 } }),
      JSON.stringify({ ...beat, draining: 'no' }),
      JSON.stringify({ ...beat, models: [{ id: 'm', state: 'sleeping' }] }),
    ]) {
      assert.equal(parseHeartbeat(bad), null, bad);
    }
  });
});
