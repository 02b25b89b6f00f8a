import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { encodeInboxEntry, RedisNames, STREAM_FIELD, StreamEvent } from '@switchyard/protocol';
import { compareIds, StreamHub } from './stream-hub';

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

/** What one worker write does for the requests an API instance follows: one entry in its inbox; its id. */
async function write(hub: StreamHub, events: [string, StreamEvent][]): Promise<string> {
  return (await redis.xadd(names.inbox(hub.instanceId), '*', STREAM_FIELD, encodeInboxEntry(events)))!;
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

const indexes = (events: StreamEvent[]) => events.map((e) => (e.type === 'token' ? e.index : -1));

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
  });

  after(async () => {
    await hub.onApplicationShutdown();
    const keys = await redis.keys(`${names.prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    for (const c of opened) c.disconnect();
  });

  it('hands each request its own events, in order, across entries', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    const gotA = collect(hub, a, 3);
    const gotB = collect(hub, b, 2);
    await write(hub, [
      [a, token(0)],
      [b, token(0)],
      [a, token(1)],
    ]);
    await write(hub, [
      [b, token(1)],
      [a, token(2)],
    ]);
    assert.deepEqual(indexes(await gotA), [0, 1, 2]);
    assert.deepEqual(indexes(await gotB), [0, 1]);
  });

  it('drops the events of a request nobody follows, and delivers the others of the same entry', async () => {
    const [gone, here] = [randomUUID(), randomUUID()];
    const got = collect(hub, here, 1);
    await write(hub, [
      [gone, token(0)],
      [here, token(7)],
    ]);
    assert.deepEqual(indexes(await got), [7]);
  });

  it('reads past one read’s worth of entries, and trims what it has read', async () => {
    const keeper = hub.subscribe(randomUUID(), () => undefined); // keeps the hub reading once the others end
    try {
      const id = randomUUID();
      const got = collect(hub, id, 600);
      for (let i = 0; i < 600; i++) await write(hub, [[id, token(i)]]);
      assert.deepEqual(indexes(await got).slice(-2), [598, 599]);
      // the read after the last one drops every entry before the last read
      for (;;) {
        if ((await redis.xlen(names.inbox(hub.instanceId))) <= 1) break;
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      keeper();
    }
  });

  it('fails the requests it follows when the inbox lost entries it had not read', async () => {
    const id = randomUUID();
    // written while nobody follows anything, so the hub is not reading; then one unread entry goes, as the
    // inbox's cap would take it
    const ids: string[] = [];
    for (let i = 0; i < 600; i++) ids.push(await write(hub, [[id, token(i)]]));
    await redis.xdel(names.inbox(hub.instanceId), ids[550]);
    const lost = await new Promise<string>((resolve) => hub.subscribe(id, () => undefined, resolve));
    assert.match(lost, /lost events/);
    assert.equal(hub.open, 0, 'the failed requests are no longer followed');
  });

  it('orders stream ids by time, then sequence', () => {
    assert.ok(compareIds('1700000000000-5', '1700000000000-12') < 0);
    assert.ok(compareIds('1700000000001-0', '1700000000000-99') > 0);
    assert.equal(compareIds('5-1', '5-1'), 0);
  });
});
