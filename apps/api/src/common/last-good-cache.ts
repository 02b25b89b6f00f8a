/**
 * A short-lived cache of Postgres lookups that keeps answering through an outage: lru-cache does the time to live,
 * the size bound (least recently used), one read per key in flight and stale-while-revalidate; this wrapper adds
 * what lru-cache cannot say, the *last good* value. lru-cache's `allowStaleOnFetchRejection` would answer a stale
 * value of any age; here it is answered only for `lastGoodMs` after it was read, and while a read has just failed
 * it is answered at once for `RETRY_AFTER_FAILURE_MS` instead of every request waiting on a read of its own.
 *
 * - Past its time to live an entry is read again before answering. When that read fails (the database is
 *   unreachable), the last value read is answered instead, for up to `lastGoodMs` after it was read: a known
 *   credential keeps working through a database blip, as PgBouncer and Stripe do. A key never read fails.
 * - With `staleMs`, an entry that `serveStale` accepts is answered at once for `staleMs` past its time to live while
 *   one reload runs behind it: a burst arriving as an entry expires waits for no read. Use it only where an answer
 *   that old is harmless (not for credentials).
 * - `delete`, `clear` and `set` abort a read in flight for their keys (lru-cache's doing): its result is dropped,
 *   and its callers read again.
 */
import { LRUCache } from 'lru-cache';

export interface LastGoodCacheOptions<V> {
  /** How long a value read is answered without reading it again. */
  ttlMs: number;
  /** How long after a value was read it is still answered when reading it again fails (none by default). */
  lastGoodMs?: number;
  /** Entries kept (the keys may be client-chosen); the least recently used go first. */
  max?: number;
  staleMs?: number;
  /** Which values may be served stale (all by default): a caller may keep its negative answers fresh. */
  serveStale?: (value: V) => boolean;
  /** Called each time a value is answered because its read failed (for a metric); `err` is null for the answers
   * given without a read during the back-off. */
  onLastGood?: (err: unknown) => void;
  /** The clock (a spec moves it). */
  now?: () => number;
}

/** After a failed read, how long an entry's last good value is answered without trying again. */
export const RETRY_AFTER_FAILURE_MS = 1000;

interface Entry<V> {
  value: V;
  /** When the read that gave `value` was sent. */
  readAt: number;
  /** Set on the entry put back, for the back-off, after a read failed. */
  lastGood?: true;
}

type Load<V> = () => Promise<V>;

export class LastGoodCache<V> {
  private readonly cache: LRUCache<string, Entry<V>, Load<V>>;
  private readonly now: () => number;
  private readonly serveStale: (value: V) => boolean;
  private readonly onLastGood: (err: unknown) => void;
  private generation = 0;
  /** Bumped by every delete, clear and set: each aborts a read in flight, whose callers then read again. */
  private changes = 0;

  constructor(private readonly options: LastGoodCacheOptions<V>) {
    this.now = options.now ?? Date.now;
    this.serveStale = options.serveStale ?? (() => true);
    this.onLastGood = options.onLastGood ?? (() => undefined);
    this.cache = new LRUCache<string, Entry<V>, Load<V>>({
      max: options.max ?? 10_000,
      ttl: options.ttlMs,
      // no cached clock: an entry expires when its time is up, and a spec's clock is read on every call
      ttlResolution: 0,
      ...(options.now && { perf: { now: options.now } }),
      // a failed reload leaves the expired entry in place: stale-while-revalidate keeps answering it until
      // `staleMs` is up, and `read` decides whether it is still a good enough last value
      noDeleteOnFetchRejection: true,
      fetchMethod: (_key, stale, { options: set, context }) => this.read(stale, context, set),
    });
  }

  async get(key: string, load: Load<V>): Promise<V> {
    for (;;) {
      const changes = this.changes;
      const status: LRUCache.Status<string, Entry<V>, Load<V>> = {};
      let entry: Entry<V> | undefined;
      try {
        entry = await this.cache.fetch(key, { context: load, allowStale: this.staleOk(key), status });
      } catch (err) {
        if (this.changes === changes) throw err;
      }
      if (entry) {
        if (entry.lastGood && status.fetch === 'hit') this.onLastGood(null);
        return entry.value;
      }
      // a read aborted by a change on this replica is read again; lru-cache answers nothing only for an aborted read
      if (this.changes === changes) throw new Error(`reading "${key}" was aborted`);
    }
  }

  /** Bumped by every delete and clear: a value read before one of them must not be put back (`set`). */
  get version(): number {
    return this.generation;
  }

  /**
   * Puts a value read elsewhere (a background refresh) as a fresh entry, unless the cache was changed by a delete
   * or clear since `since` (`version` when the read was sent).
   */
  set(key: string, value: V, since: number): void {
    if (since !== this.generation) return;
    this.changes++;
    this.cache.set(key, { value, readAt: this.now() });
  }

  delete(key: string): void {
    this.generation++;
    this.changes++;
    this.cache.delete(key);
  }

  clear(): void {
    this.generation++;
    this.changes++;
    this.cache.clear();
  }

  /** Whether an expired entry for `key` may be answered while it is read again (stale-while-revalidate). */
  private staleOk(key: string): boolean {
    const staleMs = this.options.staleMs ?? 0;
    if (staleMs <= 0) return false;
    const entry = this.cache.peek(key, { allowStale: true });
    return (
      entry !== undefined &&
      !entry.lastGood &&
      this.serveStale(entry.value) &&
      this.now() - entry.readAt < this.options.ttlMs + staleMs
    );
  }

  /** lru-cache's fetchMethod: a read, or after a failed one the last good value, kept for the back-off. */
  private async read(stale: Entry<V> | undefined, load: Load<V>, set: { ttl?: number }): Promise<Entry<V>> {
    const readAt = this.now();
    try {
      return { value: await load(), readAt };
    } catch (err) {
      const left = stale ? (this.options.lastGoodMs ?? 0) - (this.now() - stale.readAt) : 0;
      if (!stale || left <= 0) throw err;
      this.onLastGood(err);
      set.ttl = Math.min(RETRY_AFTER_FAILURE_MS, left);
      return { value: stale.value, readAt: stale.readAt, lastGood: true };
    }
  }
}
