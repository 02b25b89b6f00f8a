/**
 * Writes requests' events where their API reads them. Events pushed in one tick (one engine step emits every row's
 * token synchronously) go out as one Redis command, a script: one round-trip per step, not per token.
 * - A request that names its API instance (the job's `notify`) has its events in that instance's inbox: the step's
 *   events for all the requests an instance follows are one entry, so a step of 64 rows costs Redis one XADD and
 *   the API one read of one key.
 * - A request without one (a client of the worker alone) has them in `gen:<request id>`, one entry per event.
 * Streams and inboxes are capped in length and expire after their last write (a stream: its last start or end
 * entry); the API trims its inbox as it reads.
 */
import type { Redis } from 'ioredis';
import {
  encodeInboxEntry,
  encodeStreamEvent,
  RedisNames,
  STREAM_FIELD,
  STREAM_MAX_LEN,
  STREAM_TTL_S,
  StreamEvent,
} from '@switchyard/batching';

/**
 * KEYS: the streams, then the inboxes; ARGV: max length, TTL, the number of streams, then per stream its entry and
 * '1' if its expiry is (re)set, then per inbox its entry. An entry that fails (a key of another type) does not stop
 * the others; the reply is the failures and the first error.
 */
const APPEND = `
local maxlen, ttl, streams, failed, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), 0, ''
local function add(key, entry)
  local r = redis.pcall('XADD', key, 'MAXLEN', '~', maxlen, '*', '${STREAM_FIELD}', entry)
  if type(r) == 'table' and r.err then
    failed = failed + 1
    if first == '' then first = r.err end
    return false
  end
  return true
end
for i = 1, streams do
  if add(KEYS[i], ARGV[2 * i + 2]) and ARGV[2 * i + 3] == '1' then redis.call('EXPIRE', KEYS[i], ttl) end
end
for i = streams + 1, #KEYS do
  if add(KEYS[i], ARGV[streams + i + 3]) then redis.call('EXPIRE', KEYS[i], ttl) end
end
return {failed, first}`;

type Append = (numKeys: number, ...args: (string | number)[]) => Promise<[number, string]>;

export class StreamWriter {
  /** The events of the tick being collected, with each one's request id and inbox (null: its own stream). */
  private pending: StreamEvent[] = [];
  private requestIds: string[] = [];
  private inboxes: (string | null)[] = [];
  private scheduled = false;
  private inFlight: Promise<void> = Promise.resolve();
  /** Resolves once the batch being collected is in Redis; made on demand by `afterWrite`. */
  private batchWritten: { promise: Promise<void>; resolve: () => void } | null = null;

  private readonly append: Append;

  constructor(
    redis: Redis,
    private readonly names: RedisNames,
    private readonly onError: (err: Error) => void,
  ) {
    if (!('appendEvents' in redis)) redis.defineCommand('appendEvents', { lua: APPEND });
    const client = redis as Redis & { appendEvents: Append };
    this.append = (numKeys, ...args) => client.appendEvents(numKeys, ...args);
  }

  /** Queues a request's event for `inbox` (the following API's, from `RedisNames.inbox`), or for its own stream. */
  push(requestId: string, event: StreamEvent, inbox: string | null): void {
    const n = this.pending.length;
    // A request's last token and its final event come from the same step: one entry carries both.
    if (event.type === 'final' && n > 0 && this.requestIds[n - 1] === requestId && this.inboxes[n - 1] === inbox) {
      const previous = this.pending[n - 1];
      if (previous.type === 'token' && previous.attempt === event.attempt) {
        const { attempt: _attempt, ...lastToken } = previous;
        this.pending[n - 1] = { ...event, lastToken };
        return;
      }
    }
    this.pending.push(event);
    this.requestIds.push(requestId);
    this.inboxes.push(inbox);
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
    const { pending: events, requestIds, inboxes } = this;
    const written = this.batchWritten;
    this.pending = [];
    this.requestIds = [];
    this.inboxes = [];
    this.batchWritten = null;
    const streamKeys: string[] = [];
    const streamArgs: string[] = [];
    const byInbox = new Map<string, [string, StreamEvent][]>();
    for (let i = 0; i < events.length; i++) {
      const inbox = inboxes[i];
      if (inbox === null) {
        streamKeys.push(this.names.stream(requestIds[i]));
        streamArgs.push(encodeStreamEvent(events[i]), events[i].type === 'token' ? '0' : '1');
        continue;
      }
      let list = byInbox.get(inbox);
      if (!list) byInbox.set(inbox, (list = []));
      list.push([requestIds[i], events[i]]);
    }
    const inboxKeys = [...byInbox.keys()];
    const inboxArgs = [...byInbox.values()].map(encodeInboxEntry);
    const sent = this.append(
      streamKeys.length + inboxKeys.length,
      ...streamKeys,
      ...inboxKeys,
      STREAM_MAX_LEN,
      STREAM_TTL_S,
      streamKeys.length,
      ...streamArgs,
      ...inboxArgs,
    ).then(
      ([failed, first]) => {
        if (failed > 0) this.onError(new Error(`${failed} stream entries were not written: ${first}`));
      },
      (err: Error) => this.onError(err),
    );
    this.inFlight = this.inFlight.then(() => sent);
    if (written) void this.inFlight.then(written.resolve);
  };
}
