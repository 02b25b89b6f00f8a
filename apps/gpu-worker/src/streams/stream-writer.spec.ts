import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { decodeInboxEntry, decodeStreamEntry, RedisNames, STREAM_TTL_S, StreamEvent } from '@switchyard/protocol';
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

const final = (text: string): StreamEvent => ({
  type: 'final',
  attempt: 1,
  generatedText: text,
  inputTokens: 3,
  queueMs: 0,
  inferenceMs: 1,
  details: { finishReason: 'length', generatedTokens: 2, seed: null, tokens: [], topTokens: [], prefill: [] },
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
    writer.push(id, final('ab'), null);
    await writer.settle();
    const events = await entries(id);
    assert.deepEqual(
      events.map((e) => e.type),
      ['token', 'final'],
    );
    const last = events[1];
    assert.equal(last.type === 'final' && last.lastToken?.token.text, 'b');
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

  it('writes the events of requests that name an API instance as one entry of its inbox, in order', async () => {
    const writer = new StreamWriter(redis, names, (e) => assert.fail(e));
    const [inboxA, inboxB] = [names.inbox('api-a'), names.inbox('api-b')];
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    writer.push(a, { type: 'start', worker: 'w', attempt: 1, at: 1 }, inboxA);
    writer.push(b, token(0, 'x'), inboxA);
    writer.push(c, token(0, 'y'), inboxB);
    writer.push(a, token(0, 'z'), inboxA);
    writer.push(d, token(0, 'w'), null);
    await writer.afterWrite();
    const [[, fieldsA], ...moreA] = await redis.xrange(inboxA, '-', '+');
    assert.equal(moreA.length, 0, 'one entry per write');
    assert.deepEqual(
      decodeInboxEntry(fieldsA)!.map(([id, e]) => [id, e.type]),
      [
        [a, 'start'],
        [b, 'token'],
        [a, 'token'],
      ],
    );
    assert.equal(decodeInboxEntry((await redis.xrange(inboxB, '-', '+'))[0][1])![0][0], c);
    assert.equal(await redis.exists(names.stream(a)), 0, 'a request with an inbox has no stream of its own');
    assert.equal((await entries(d)).length, 1, 'one without has its own');
    const ttl = await redis.ttl(inboxA);
    assert.ok(ttl > STREAM_TTL_S - 5 && ttl <= STREAM_TTL_S, `ttl ${ttl}`);
  });

  it('folds a last token into the final event in an inbox too', async () => {
    const writer = new StreamWriter(redis, names, (e) => assert.fail(e));
    const inbox = names.inbox('api-c');
    const id = randomUUID();
    writer.push(id, token(0, 'a'), inbox);
    writer.push(id, token(1, 'b'), inbox);
    writer.push(id, final('ab'), inbox);
    await writer.settle();
    const events = decodeInboxEntry((await redis.xrange(inbox, '-', '+'))[0][1])!.map(([, e]) => e);
    assert.deepEqual(
      events.map((e) => e.type),
      ['token', 'final'],
    );
    const last = events[1];
    assert.equal(last.type === 'final' && last.lastToken?.token.text, 'b');
  });

  it('reports the requests whose cancel key was set when their start was written, and still writes every entry', async () => {
    const cancelled: string[] = [];
    const writer = new StreamWriter(
      redis,
      names,
      (e) => assert.fail(e),
      (id) => cancelled.push(id),
    );
    const inbox = names.inbox('api-d');
    const [a, b, c, d] = [randomUUID(), randomUUID(), randomUUID(), randomUUID()];
    await redis.set(names.cancel(b), '1');
    await redis.set(names.cancel(d), '1');
    writer.push(a, { type: 'start', worker: 'w', attempt: 1, at: 1 }, inbox);
    writer.push(b, { type: 'start', worker: 'w', attempt: 1, at: 1 }, inbox);
    writer.push(c, { type: 'start', worker: 'w', attempt: 1, at: 1 }, null);
    writer.push(d, { type: 'start', worker: 'w', attempt: 1, at: 1 }, null);
    writer.push(a, token(0, 'x'), inbox);
    await writer.settle();
    assert.deepEqual(cancelled, [b, d]);
    assert.deepEqual(
      decodeInboxEntry((await redis.xrange(inbox, '-', '+'))[0][1])!.map(([id, e]) => [id, e.type]),
      [
        [a, 'start'],
        [b, 'start'],
        [a, 'token'],
      ],
    );
    assert.equal((await entries(c)).length, 1);
    assert.equal((await entries(d)).length, 1);
    // a token is not a start: a cancel key set later is the cancel channel's business, not this check's
    await redis.set(names.cancel(a), '1');
    writer.push(a, token(1, 'y'), inbox);
    await writer.settle();
    assert.deepEqual(cancelled, [b, d]);
  });
});
