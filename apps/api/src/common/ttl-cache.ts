/**
 * A small time-to-live cache of lookups. It keeps the pending promise, so requests that miss together share one
 * read; a failed read is not kept. Past `maxEntries` it starts again empty (the keys are client-chosen).
 *
 * With `staleMs`, an entry past its time to live but within `staleMs` more is still answered at once while one
 * reload runs behind it (stale-while-revalidate): a burst of requests arriving when an entry expires then waits for
 * no read, where each of them would otherwise wait for the one reload's reply, which a busy event loop takes in only
 * after the burst. Use it only where an answer that old is harmless (not for credentials).
 */
export interface TtlCacheOptions<V> {
  maxEntries?: number;
  staleMs?: number;
  /** Which loaded values may be served stale (all by default): a caller may keep its negative answers fresh. */
  serveStale?: (value: V) => boolean;
  /** The clock (a spec moves it). */
  now?: () => number;
}

interface Entry<V> {
  at: number;
  value: Promise<V>;
  /** Set once `value` has resolved to a value that `serveStale` accepts: only such an entry is served stale. */
  staleOk: boolean;
  reloading: boolean;
}

export class TtlCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly maxEntries: number;
  private readonly staleMs: number;
  private readonly now: () => number;
  private readonly serveStale: (value: V) => boolean;
  private generation = 0;

  constructor(
    private readonly ttlMs: number,
    options: TtlCacheOptions<V> = {},
  ) {
    this.maxEntries = options.maxEntries ?? 10_000;
    this.staleMs = options.staleMs ?? 0;
    this.now = options.now ?? Date.now;
    this.serveStale = options.serveStale ?? (() => true);
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
      (v) => (entry.staleOk = this.serveStale(v)),
      () => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    return value;
  }

  /** An entry for a value already read at `at`. */
  private loaded(at: number, value: V): Entry<V> {
    return { at, value: Promise.resolve(value), staleOk: this.serveStale(value), reloading: false };
  }

  /** Replaces a stale entry once its reload succeeds; a failed reload leaves it to expire. */
  private reload(key: string, stale: Entry<V>, load: () => Promise<V>): void {
    stale.reloading = true;
    const at = this.now();
    let reloaded: Promise<V>;
    try {
      reloaded = load();
    } catch (err) {
      reloaded = Promise.reject(err as Error);
    }
    reloaded.then(
      (value) => {
        if (this.entries.get(key) !== stale) return; // deleted or replaced meanwhile
        this.entries.set(key, this.loaded(at, value));
      },
      () => (stale.reloading = false),
    );
  }
}
