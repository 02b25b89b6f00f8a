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
    writer.push(a, { type: 'start', worker: 'w', attempt: 1, at: 1 });
    writer.push(b, { type: 'start', worker: 'w', attempt: 1, at: 2 });
    writer.push(a, token(0, 'x'));
    writer.push(b, token(0, 'y'));
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
    writer.push(id, token(0, 'a'));
    writer.push(id, token(1, 'b'));
    writer.push(id, {
      type: 'final',
      attempt: 1,
      generatedText: 'ab',
      inputTokens: 3,
      details: { finishReason: 'length', generatedTokens: 2, seed: null, tokens: [], topTokens: [], prefill: [] },
    } as unknown as StreamEvent);
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
    writer.push(bad, token(0, 'x'));
    writer.push(good, token(0, 'y'));
    await writer.afterWrite();
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /1 stream entries were not written: WRONGTYPE/);
    assert.equal((await entries(good)).length, 1);
  });
});
