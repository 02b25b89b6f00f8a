/**
 * Writes requests' events where their API reads them. Events pushed in one tick (one engine step emits every row's
 * token synchronously) go out as one Redis command, a script: one round-trip per step, not per token.
 * - A request that names its API instance (the job's `notify`) has its events in that instance's inbox: the step's
 *   events for all the requests an instance follows are one entry, so a step of 64 rows costs Redis one XADD and
 *   the API one read of one key.
 * - A request without one (a client of the worker alone) has them in `gen:<request id>`, one entry per event.
 * Streams and inboxes are capped in length and expire after their last write (a stream: its last start or end
 * entry); the API trims its inbox as it reads.
 * The same command checks, for each request whose start it writes, whether `cancel:<id>` is set: a cancel that came
 * before the job started costs no round-trip of its own, and `onCancelled` hears of it.
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
} from '@switchyard/protocol';

/**
 * KEYS: the streams, the inboxes, then the cancel keys to check; ARGV: max length, TTL, the number of streams and of
 * inboxes, then per stream its entry and '1' if its expiry is (re)set, then per inbox its entry. An entry that fails
 * (a key of another type) does not stop the others. The reply: the failures, the first error, then the positions
 * (from 0) of the cancel keys that exist.
 */
const APPEND = `
local maxlen, ttl, streams, inboxes = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local failed, first = 0, ''
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
  if add(KEYS[i], ARGV[2 * i + 3]) and ARGV[2 * i + 4] == '1' then redis.call('EXPIRE', KEYS[i], ttl) end
end
for i = 1, inboxes do
  if add(KEYS[streams + i], ARGV[2 * streams + 4 + i]) then redis.call('EXPIRE', KEYS[streams + i], ttl) end
end
local reply = {failed, first}
for i = streams + inboxes + 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then reply[#reply + 1] = i - streams - inboxes - 1 end
end
return reply`;

type Append = (numKeys: number, ...args: (string | number)[]) => Promise<[number, string, ...number[]]>;

export class StreamWriter {
  /** The events of the tick being collected, with each one's request id and inbox (null: its own stream). */
  private pending: StreamEvent[] = [];
  private requestIds: string[] = [];
  private inboxes: (string | null)[] = [];
  /** Requests whose start is in the batch being collected, to check for a cancel that came first. */
  private starting: string[] = [];
  private scheduled = false;
  private inFlight: Promise<void> = Promise.resolve();
  /** Resolves once the batch being collected is in Redis; made on demand by `afterWrite`. */
  private batchWritten: { promise: Promise<void>; resolve: () => void } | null = null;

  private readonly append: Append;

  constructor(
    redis: Redis,
    private readonly names: RedisNames,
    private readonly onError: (err: Error) => void,
    /** Hears of requests whose `cancel:<id>` was set when their start was written; without it, none is checked. */
    private readonly onCancelled?: (requestId: string) => void,
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
    if (event.type === 'start' && this.onCancelled) this.starting.push(requestId);
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
    const { pending: events, requestIds, inboxes, starting } = this;
    const written = this.batchWritten;
    this.pending = [];
    this.requestIds = [];
    this.inboxes = [];
    this.starting = [];
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
      streamKeys.length + inboxKeys.length + starting.length,
      ...streamKeys,
      ...inboxKeys,
      ...starting.map((id) => this.names.cancel(id)),
      STREAM_MAX_LEN,
      STREAM_TTL_S,
      streamKeys.length,
      inboxKeys.length,
      ...streamArgs,
      ...inboxArgs,
    ).then(
      ([failed, first, ...cancelled]) => {
        // the callbacks are not allowed to break the chain that settle() and afterWrite() wait on
        try {
          if (failed > 0) this.onError(new Error(`${failed} stream entries were not written: ${first}`));
          for (const i of cancelled) this.onCancelled!(starting[i]);
        } catch {
          // a throwing listener loses its own notice, nothing else
        }
      },
      (err: Error) => this.onError(err),
    );
    this.inFlight = this.inFlight.then(() => sent);
    if (written) void this.inFlight.then(written.resolve);
  };
}
