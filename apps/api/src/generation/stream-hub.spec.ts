import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { encodeStreamEvent, RedisNames, STREAM_FIELD, StreamEvent } from '@switchyard/batching';
import { StreamHub } from './stream-hub';

const URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const names = new RedisNames(`sy-test-${randomUUID().slice(0, 8)}:`);
const redis = new Redis(URL);
const opened: Redis[] = [];

const token = (index: number): StreamEvent => ({
  type: 'token',
  attempt: 1,
  index,
  token: { id: index, text: `t${index}`, logprob: -1, special: false },
  topTokens: [],
});

/** What a worker's write does: the entries, then one ring of the follower's doorbell. */
async function write(hub: StreamHub, requestId: string, events: StreamEvent[], ring = true): Promise<void> {
  const multi = redis.multi();
  for (const event of events) multi.xadd(names.stream(requestId), '*', STREAM_FIELD, encodeStreamEvent(event));
  if (ring) multi.lpush(names.doorbell(hub.instanceId), '1').ltrim(names.doorbell(hub.instanceId), 0, 0);
  await multi.exec();
}

/** Resolves with the first `n` events delivered for the request. */
function collect(hub: StreamHub, requestId: string, n: number): Promise<StreamEvent[]> {
  return new Promise((resolve) => {
    const got: StreamEvent[] = [];
    const stop = hub.subscribe(requestId, (event) => {
      got.push(event);
      if (got.length === n) {
        stop();
        resolve(got);
      }
    });
  });
}

/** Waits until the hub's connection is blocked on its doorbell, as Redis reports it. */
async function blockedOnBell(): Promise<void> {
  for (;;) {
    const clients = (await redis.client('LIST')) as string;
    if (clients.split('\n').some((c) => c.includes('name=switchyard-api-streams') && c.includes('cmd=blpop'))) return;
    await new Promise((r) => setImmediate(r));
  }
}

describe('StreamHub', { timeout: 20_000 }, () => {
  let hub: StreamHub;

  before(() => {
    hub = new StreamHub({
      names,
      duplicate: (name: string) => {
        const client = new Redis(URL, { connectionName: name });
        opened.push(client);
        return client;
      },
    });
    // long enough that only a bell (or the hub's own re-read) can deliver within a test's timeout
    hub.bellWaitS = 60;
  });

  after(async () => {
    await hub.onApplicationShutdown();
    const keys = await redis.keys(`${names.prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    for (const c of opened) c.disconnect();
  });

  it('delivers a stream’s entries in order, from its first, when the bell rings', async () => {
    const id = randomUUID();
    const got = collect(hub, id, 3);
    await blockedOnBell();
    await write(hub, id, [token(0), token(1)]);
    await write(hub, id, [token(2)]);
    assert.deepEqual(
      (await got).map((e) => e.type === 'token' && e.index),
      [0, 1, 2],
    );
  });

  it('reads a stream opened while the hub waits on the bell, though the read queued behind it missed it', async () => {
    const first = randomUUID();
    const waiting = collect(hub, first, 1);
    await blockedOnBell();
    // opened now: the XREAD already queued behind the BLPOP does not name it
    const late = randomUUID();
    const got = collect(hub, late, 2);
    await write(hub, late, [token(0), token(1)]);
    assert.equal((await got).length, 2);
    await write(hub, first, [token(0)]);
    await waiting;
  });

  it('reads again at once when a stream returned a full read', async () => {
    const id = randomUUID();
    const got = collect(hub, id, 1200);
    await blockedOnBell();
    await write(
      hub,
      id,
      Array.from({ length: 1200 }, (_, i) => token(i)),
    );
    const events = await got;
    assert.equal(events.length, 1200);
    assert.equal(events[1199].type === 'token' && events[1199].index, 1199);
  });

  it('still reads, after the wait, a stream whose writer rings no bell', async () => {
    hub.bellWaitS = 0.2;
    try {
      const id = randomUUID();
      const got = collect(hub, id, 1);
      await blockedOnBell();
      await write(hub, id, [token(0)], false);
      assert.equal((await got).length, 1);
    } finally {
      hub.bellWaitS = 60;
    }
  });
});
