import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { decodeStreamEntry, RedisNames, STREAM_TTL_S, StreamEvent } from '@switchyard/batching';
import { StreamWriter } from './stream-writer';

const redis = new Redis(process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const names = new RedisNames(`sy-test-${randomUUID().slice(0, 8)}:`);

async function entries(id: string): Promise<StreamEvent[]> {
  const rows = await redis.xrange(names.stream(id), '-', '+');
  return rows.map(([, fields]) => decodeStreamEntry(fields)!);
}

const token = (index: number, text: string): StreamEvent => ({
  type: 'token',
  attempt: 1,
  index,
  token: { id: index, text, logprob: -0.5, special: false },
  topTokens: [],
});

describe('StreamWriter', () => {
  after(async () => {
    const keys = await redis.keys(`${names.prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  it('writes a tick’s entries in one command, in order, and sets the TTL at start and end entries', async () => {
    const errors: Error[] = [];
    const writer = new StreamWriter(redis, names, (e) => errors.push(e));
    const [a, b] = [randomUUID(), randomUUID()];
    writer.push(a, { type: 'start', worker: 'w', attempt: 1, at: 1 }, null);
    writer.push(b, { type: 'start', worker: 'w', attempt: 1, at: 2 }, null);
    writer.push(a, token(0, 'x'), null);
    writer.push(b, token(0, 'y'), null);
    const written = writer.afterWrite();
    assert.equal(await redis.exists(names.stream(a)), 0, 'nothing is sent before the tick ends');
    await written;
    assert.deepEqual(
      (await entries(a)).map((e) => e.type),
      ['start', 'token'],
    );
    const second = (await entries(b))[1];
    assert.equal(second.type === 'token' && second.token.text, 'y');
    const ttl = await redis.ttl(names.stream(a));
    assert.ok(ttl > STREAM_TTL_S - 5 && ttl <= STREAM_TTL_S, `ttl ${ttl}`);
    assert.deepEqual(errors, []);
  });

  it('folds a last token into the final entry of the same tick', async () => {
    const writer = new StreamWriter(redis, names, (e) => assert.fail(e));
    const id = randomUUID();
    writer.push(id, token(0, 'a'), null);
    writer.push(id, token(1, 'b'), null);
    writer.push(
      id,
      {
        type: 'final',
        attempt: 1,
        generatedText: 'ab',
        inputTokens: 3,
        details: { finishReason: 'length', generatedTokens: 2, seed: null, tokens: [], topTokens: [], prefill: [] },
      } as unknown as StreamEvent,
      null,
    );
    await writer.settle();
    const events = await entries(id);
    assert.deepEqual(
      events.map((e) => e.type),
      ['token', 'final'],
    );
    const final = events[1];
    assert.equal(final.type === 'final' && final.lastToken?.token.text, 'b');
  });

  it('reports an entry that cannot be written and still writes the others', async () => {
    const errors: Error[] = [];
    const writer = new StreamWriter(redis, names, (e) => errors.push(e));
    const [bad, good] = [randomUUID(), randomUUID()];
    await redis.set(names.stream(bad), 'not a stream');
    writer.push(bad, token(0, 'x'), null);
    writer.push(good, token(0, 'y'), null);
    await writer.afterWrite();
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /1 stream entries were not written: WRONGTYPE/);
    assert.equal((await entries(good)).length, 1);
  });

  it('rings each doorbell once per write, after the entries, and leaves at most one item in it', async () => {
    const writer = new StreamWriter(redis, names, (e) => assert.fail(e));
    const [bellA, bellB] = [names.doorbell('api-a'), names.doorbell('api-b')];
    const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
    // a reader blocked on bell A, with a read of stream a queued behind it, as the API's stream hub does
    const reader = redis.duplicate();
    const rung = reader.blpop(bellA, 5);
    const read = reader.xrange(names.stream(a), '-', '+');
    writer.push(a, token(0, 'x'), bellA);
    writer.push(b, token(0, 'y'), bellA);
    writer.push(c, token(0, 'z'), bellB);
    await writer.afterWrite();
    assert.deepEqual(await rung, [bellA, '1']);
    assert.equal((await read).length, 1, 'the entries are in the stream when the bell rings');
    reader.disconnect();
    assert.equal(await redis.llen(bellA), 0, 'one ring per write, however many of its streams got entries');
    assert.equal(await redis.llen(bellB), 1);
    writer.push(c, token(1, 'w'), bellB);
    await writer.afterWrite();
    assert.equal(await redis.llen(bellB), 1, 'a bell not yet answered holds one item');
    const ttl = await redis.ttl(bellB);
    assert.ok(ttl > STREAM_TTL_S - 5 && ttl <= STREAM_TTL_S, `ttl ${ttl}`);
  });
});
