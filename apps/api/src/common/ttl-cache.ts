/**
 * A small time-to-live cache of lookups. It keeps the pending promise, so requests that miss together share one
 * read; a failed read is not kept. Past `maxEntries` it starts again empty (the keys are client-chosen).
 *
 * With `staleMs`, an entry past its time to live but within `staleMs` more is still answered at once while one
 * reload runs behind it (stale-while-revalidate): a burst of requests arriving when an entry expires then waits for
 * no read, where each of them would otherwise wait for the one reload's reply, which a busy event loop takes in only
 * after the burst. Use it only where an answer that old is harmless (not for credentials).
 *
 * With `lastGoodMs`, an entry past its time to live is read again before answering, but when that read fails (the
 * database is unreachable) the last value read is answered instead, for up to `lastGoodMs` after it was read: a
 * known credential keeps working through a database blip, as PgBouncer and Stripe do. After a failed read, requests
 * are answered from that value at once for `RETRY_AFTER_FAILURE_MS` rather than each waiting on a read of their own.
 */
export interface TtlCacheOptions<V> {
  maxEntries?: number;
  staleMs?: number;
  /** Which loaded values may be served stale (all by default): a caller may keep its negative answers fresh. */
  serveStale?: (value: V) => boolean;
  /** How long after a value was read it is still answered when reading it again fails. */
  lastGoodMs?: number;
  /** Called each time a value is answered because its read failed (for a metric). */
  onLastGood?: (err: unknown) => void;
  /** The clock (a spec moves it). */
  now?: () => number;
}

/** After a failed read, how long an entry's last good value is answered without trying again. */
export const RETRY_AFTER_FAILURE_MS = 1000;

interface Entry<V> {
  at: number;
  value: Promise<V>;
  /** Set once `value` has resolved to a value that `serveStale` accepts: only such an entry is served stale. */
  staleOk: boolean;
  reloading: boolean;
  /** The value, once it has resolved (`lastGoodMs` answers it when a later read fails). */
  settled?: { value: V };
  /** A read of an expired entry under way, which answers the last good value if it fails. */
  refreshing?: Promise<V>;
  /** When the last read of this entry failed. */
  failedAt?: number;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxEntries: number;
  private readonly staleMs: number;
  private readonly now: () => number;
  private readonly serveStale: (value: V) => boolean;
  private readonly lastGoodMs: number;
  private readonly onLastGood: (err: unknown) => void;
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    options: TtlCacheOptions<V> = {},
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.staleMs = options.staleMs ?? 0;
    this.now = options.now ?? Date.now;
    this.serveStale = options.serveStale ?? (() => true);
    this.lastGoodMs = options.lastGoodMs ?? 0;
    this.onLastGood = options.onLastGood ?? (() => undefined);
  }

  get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit) {
      const age = this.now() - hit.at;
      if (age < this.ttlMs) return hit.value;
      if (hit.staleOk && age < this.ttlMs + this.staleMs) {
        if (!hit.reloading) this.reload(key, hit, load);
        return hit.value;
      }
      if (hit.settled && age < this.ttlMs + this.lastGoodMs) return this.refresh(key, hit, load);
    }
    if (this.entries.size >= this.maxEntries) this.entries.clear();
    return this.start(key, load);
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
    this.entries.set(key, this.loaded(this.now(), value));
  }

  delete(key: string): void {
    this.generation++;
    this.entries.delete(key);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
  }

  private start(key: string, load: () => Promise<V>): Promise<V> {
    const value = load();
    const entry: Entry<V> = { at: this.now(), value, staleOk: false, reloading: false };
    this.entries.set(key, entry);
    value.then(
      (v) => {
        entry.staleOk = this.serveStale(v);
        entry.settled = { value: v };
      },
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return value;
  }

  /** An entry for a value already read at `at`. */
  private loaded(at: number, value: V): Entry<V> {
    return {
      at,
      value: Promise.resolve(value),
      staleOk: this.serveStale(value),
      reloading: false,
      settled: { value },
    };
  }

  /**
   * Reads an expired entry again; callers meanwhile share the read. A failed read answers the last good value, and
   * so does every call for a second after it, without waiting on another read.
   */
  private refresh(key: string, old: Entry<V>, load: () => Promise<V>): Promise<V> {
    if (old.refreshing) return old.refreshing;
    const last = old.settled!.value;
    if (old.failedAt !== undefined && this.now() - old.failedAt < RETRY_AFTER_FAILURE_MS) {
      this.onLastGood(null);
      return Promise.resolve(last);
    }
    const at = this.now();
    old.refreshing = read(load).then(
      (value) => {
        if (this.entries.get(key) === old) this.entries.set(key, this.loaded(at, value));
        return value;
      },
      (err: unknown) => {
        old.refreshing = undefined;
        old.failedAt = this.now();
        this.onLastGood(err);
        return last;
      },
    );
    return old.refreshing;
  }

  /** Replaces a stale entry once its reload succeeds; a failed reload leaves it to expire. */
  private reload(key: string, stale: Entry<V>, load: () => Promise<V>): void {
    stale.reloading = true;
    const at = this.now();
    read(load).then(
      (value) => {
        if (this.entries.get(key) !== stale) return; // deleted or replaced meanwhile
        this.entries.set(key, this.loaded(at, value));
      },
      () => (stale.reloading = false),
    );
  }
}

/** The load's promise; a load that throws before returning one is a rejected read too. */
function read<V>(load: () => Promise<V>): Promise<V> {
  try {
    return load();
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
