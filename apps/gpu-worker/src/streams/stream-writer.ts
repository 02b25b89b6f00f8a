/**
 * Writes stream events to `gen:<request id>`. Events pushed in one tick (one engine step emits every row's token
 * synchronously) go out as one Redis command: a script that XADDs each entry. That is one round-trip per step, not
 * per token, and one command for the client to build where a pipeline of 64 XADDs cost the engine thread about 2 ms
 * a step. The same script then rings the doorbell of each API instance that follows one of those streams, once,
 * and that instance reads all its streams in one XREAD. A stream is capped in length and expires after its last
 * start or end entry.
 */
import type { Redis } from 'ioredis';
import {
  encodeStreamEvent,
  RedisNames,
  STREAM_FIELD,
  STREAM_MAX_LEN,
  STREAM_TTL_S,
  StreamEvent,
} from '@switchyard/batching';

/**
 * KEYS: the streams, then the doorbells; ARGV: max length, TTL, the number of streams, then per stream its entry and
 * '1' if the stream's expiry is (re)set. An entry that fails (a key of another type) does not stop the others; the
 * reply is the failures and the first error. A doorbell holds at most one item, and expires like a stream.
 */
const APPEND_STREAMS = `
local maxlen, ttl, streams, failed, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), 0, ''
for i = 1, streams do
  local r = redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', '${STREAM_FIELD}', ARGV[2 * i + 2])
  if type(r) == 'table' and r.err then
    failed = failed + 1
    if first == '' then first = r.err end
  elseif ARGV[2 * i + 3] == '1' then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
for i = streams + 1, #KEYS do
  local r = redis.pcall('LPUSH', KEYS[i], '1')
  if type(r) == 'table' and r.err then
    failed = failed + 1
    if first == '' then first = r.err end
  else
    redis.call('LTRIM', KEYS[i], 0, 0)
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return {failed, first}`;

type AppendStreams = (numKeys: number, ...args: (string | number)[]) => Promise<[number, string]>;

export class StreamWriter {
  private pending: StreamEvent[] = [];
  private keys: string[] = [];
  /** The doorbells to ring with the batch being collected, each once. */
  private bells: string[] = [];
  private scheduled = false;
  private inFlight: Promise<void> = Promise.resolve();
  /** Resolves once the batch being collected is in Redis; made on demand by `afterWrite`. */
  private batchWritten: { promise: Promise<void>; resolve: () => void } | null = null;

  private readonly appendStreams: AppendStreams;

  constructor(
    redis: Redis,
    private readonly names: RedisNames,
    private readonly onError: (err: Error) => void,
  ) {
    if (!('appendStreams' in redis)) redis.defineCommand('appendStreams', { lua: APPEND_STREAMS });
    const client = redis as Redis & { appendStreams: AppendStreams };
    this.appendStreams = (numKeys, ...args) => client.appendStreams(numKeys, ...args);
  }

  /** Queues an entry for `gen:<request id>`; `bell` is the doorbell of the API instance that follows it, if any. */
  push(requestId: string, event: StreamEvent, bell: string | null): void {
    if (bell !== null && !this.bells.includes(bell)) this.bells.push(bell);
    const key = this.names.stream(requestId);
    const n = this.pending.length;
    // A request's last token and its final event come from the same step: one entry carries both.
    if (event.type === 'final' && n > 0 && this.keys[n - 1] === key) {
      const previous = this.pending[n - 1];
      if (previous.type === 'token' && previous.attempt === event.attempt) {
        const { attempt: _attempt, ...lastToken } = previous;
        this.pending[n - 1] = { ...event, lastToken };
        return;
      }
    }
    this.pending.push(event);
    this.keys.push(key);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /**
   * Resolves once everything pushed so far is in Redis (or failed, which `onError` reports), without sending the
   * batch being collected early: it still goes out whole at the end of the tick.
   */
  afterWrite(): Promise<void> {
    if (!this.scheduled) return this.inFlight;
    if (!this.batchWritten) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.batchWritten = { promise, resolve };
    }
    return this.batchWritten.promise;
  }

  /** Sends what is pending now; resolves once everything pushed so far is in Redis. */
  async settle(): Promise<void> {
    if (this.scheduled) this.flush();
    await this.inFlight;
  }

  private readonly flush = (): void => {
    if (!this.scheduled) return;
    this.scheduled = false;
    const events = this.pending;
    const keys = this.keys;
    const bells = this.bells;
    const written = this.batchWritten;
    this.pending = [];
    this.keys = [];
    this.bells = [];
    this.batchWritten = null;
    const args: (string | number)[] = new Array(keys.length + bells.length + 3 + 2 * events.length);
    for (let i = 0; i < keys.length; i++) args[i] = keys[i];
    let a = keys.length;
    for (const bell of bells) args[a++] = bell;
    args[a++] = STREAM_MAX_LEN;
    args[a++] = STREAM_TTL_S;
    args[a++] = keys.length;
    for (const event of events) {
      args[a++] = encodeStreamEvent(event);
      args[a++] = event.type === 'token' ? '0' : '1';
    }
    const sent = this.appendStreams(keys.length + bells.length, ...args).then(
      ([failed, first]) => {
        if (failed > 0) this.onError(new Error(`${failed} stream entries were not written: ${first}`));
      },
      (err: Error) => this.onError(err),
    );
    this.inFlight = this.inFlight.then(() => sent);
    if (written) void this.inFlight.then(written.resolve);
  };
}
