/**
 * Writes stream events to `gen:<request id>`. Events pushed in one tick (one engine step emits every row's token
 * synchronously) go out as one Redis command: a script that XADDs each entry. That is one round-trip per step, not
 * per token, and one command for the client to build where a pipeline of 64 XADDs cost the engine thread about 2 ms
 * a step; a reader blocked in XREAD also wakes once per step with every row's entry. A stream is capped in length
 * and expires after its last start or end entry.
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
 * KEYS: the streams; ARGV: max length, TTL, then per key its entry and '1' if the stream's expiry is (re)set.
 * An entry that fails (a key of another type) does not stop the others; the reply is the failures and the first
 * error.
 */
const APPEND_STREAMS = `
local maxlen, ttl, failed, first = ARGV[1], ARGV[2], 0, ''
for i = 1, #KEYS do
  local r = redis.pcall('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', '${STREAM_FIELD}', ARGV[2 * i + 1])
  if type(r) == 'table' and r.err then
    failed = failed + 1
    if first == '' then first = r.err end
  elseif ARGV[2 * i + 2] == '1' then
    redis.call('EXPIRE', KEYS[i], ttl)
  end
end
return {failed, first}`;

type AppendStreams = (numKeys: number, ...args: (string | number)[]) => Promise<[number, string]>;

export class StreamWriter {
  private pending: StreamEvent[] = [];
  private keys: string[] = [];
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

  push(requestId: string, event: StreamEvent): void {
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
    const written = this.batchWritten;
    this.pending = [];
    this.keys = [];
    this.batchWritten = null;
    const args: (string | number)[] = new Array(keys.length + 2 + 2 * events.length);
    for (let i = 0; i < keys.length; i++) args[i] = keys[i];
    let a = keys.length;
    args[a++] = STREAM_MAX_LEN;
    args[a++] = STREAM_TTL_S;
    for (const event of events) {
      args[a++] = encodeStreamEvent(event);
      args[a++] = event.type === 'token' ? '0' : '1';
    }
    const sent = this.appendStreams(keys.length, ...args).then(
      ([failed, first]) => {
        if (failed > 0) this.onError(new Error(`${failed} stream entries were not written: ${first}`));
      },
      (err: Error) => this.onError(err),
    );
    this.inFlight = this.inFlight.then(() => sent);
    if (written) void this.inFlight.then(written.resolve);
  };
}
