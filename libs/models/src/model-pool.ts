/**
 * The pool of models one worker holds, within a device-memory budget. A model costs its weight bytes plus its
 * KV reservation, counted from the moment its load starts. Loading one that does not fit evicts the least
 * recently used idle models (pinned ones never); if that is not enough, the load waits, bounded, for a model
 * to go idle, and otherwise fails with `CannotPlaceError`. There is one load at a time per model: concurrent
 * callers share it. Idle models unload after the keep-alive.
 *
 * The pool knows nothing of ONNX or queues: the caller supplies `load`, and each loaded handle says whether
 * it is idle and how to unload itself.
 */
import { performance } from 'node:perf_hooks';

export interface PooledModel {
  /** No running and no waiting request. */
  isIdle(): boolean;
  /** Stops taking work and frees the model's memory (for ONNX Runtime: `session.release()`). */
  unload(): Promise<void>;
}

export interface PoolSpec {
  id: string;
  pinned: boolean;
}

export type EvictionReason = 'lru' | 'keep_alive' | 'unload' | 'shutdown';

export interface ModelPoolOptions<S extends PoolSpec, M extends PooledModel> {
  budgetBytes: number;
  /** Idle time before an unload, in milliseconds; a negative value means never. */
  keepAliveMs: number;
  /** How long a load that does not fit waits for room. */
  placeTimeoutMs: number;
  /** The bytes a model will cost, known before it loads. */
  cost(spec: S): number;
  /** Loads a model that has `bytes` reserved for it (what `cost` said). */
  load(spec: S, bytes: number): Promise<M>;
  onLoaded?(id: string, ms: number): void;
  onEvicted?(id: string, reason: EvictionReason): void;
  log?(message: string): void;
}

/** The model cannot fit on this worker now: the caller routes elsewhere. */
export class CannotPlaceError extends Error {
  override name = 'CannotPlaceError';
}

interface Entry<S, M> {
  spec: S;
  bytes: number;
  state: 'loading' | 'loaded' | 'unloading';
  model: M | null;
  loading: Promise<M> | null;
  lastUsed: number;
}

export interface PoolEntryInfo {
  id: string;
  state: 'loading' | 'loaded' | 'unloading';
  bytes: number;
  pinned: boolean;
}

export class ModelPool<S extends PoolSpec, M extends PooledModel> {
  private readonly entries = new Map<string, Entry<S, M>>();
  private readonly roomWaiters = new Set<() => void>();
  private readonly sweeper: NodeJS.Timeout | null;
  private closed = false;

  constructor(private readonly options: ModelPoolOptions<S, M>) {
    const { keepAliveMs } = options;
    this.sweeper =
      keepAliveMs >= 0 ? setInterval(() => void this.sweep(), Math.min(1000, Math.max(50, keepAliveMs / 4))) : null;
    this.sweeper?.unref();
  }

  get budgetBytes(): number {
    return this.options.budgetBytes;
  }

  /** Bytes held or reserved by loading, loaded and unloading models. */
  get usedBytes(): number {
    let used = 0;
    for (const entry of this.entries.values()) used += entry.bytes;
    return used;
  }

  /** The loaded model without marking it used (for heartbeats and listings). */
  peek(id: string): M | undefined {
    const entry = this.entries.get(id);
    return entry?.state === 'loaded' ? entry.model! : undefined;
  }

  has(id: string): boolean {
    const state = this.entries.get(id)?.state;
    return state === 'loading' || state === 'loaded';
  }

  /** Marks a model as used now, so it is the last that LRU eviction picks. */
  touch(id: string): void {
    const entry = this.entries.get(id);
    if (entry) entry.lastUsed = performance.now();
  }

  list(): PoolEntryInfo[] {
    return [...this.entries.values()].map((e) => ({ id: e.spec.id, state: e.state, bytes: e.bytes, pinned: e.spec.pinned }));
  }

  /** The model loaded, loading it (once) if needed. Rejects with `CannotPlaceError` when there is no room. */
  async ensure(spec: S): Promise<M> {
    if (this.closed) throw new CannotPlaceError('the worker is shutting down');
    for (;;) {
      const entry = this.entries.get(spec.id);
      if (!entry) break;
      entry.lastUsed = performance.now();
      if (entry.state === 'loaded') {
        entry.spec.pinned = spec.pinned;
        return entry.model!;
      }
      if (entry.state === 'loading') return entry.loading!;
      // unloading: wait for it to finish, then load again
      await this.waitForChange(this.options.placeTimeoutMs);
    }
    const bytes = this.options.cost(spec);
    if (bytes > this.options.budgetBytes) {
      throw new CannotPlaceError(
        `model ${spec.id} needs ${formatBytes(bytes)}, more than this worker's device memory (${formatBytes(this.options.budgetBytes)})`,
      );
    }
    const entry: Entry<S, M> = {
      spec: { ...spec },
      bytes,
      state: 'loading',
      model: null,
      loading: null,
      lastUsed: performance.now(),
    };
    this.entries.set(spec.id, entry);
    entry.loading = this.loadEntry(entry);
    return entry.loading;
  }

  /** Unloads a model now, whether idle or not (its `unload` drains it). */
  async unload(id: string, reason: EvictionReason = 'unload'): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return false;
    if (entry.state === 'loading') await entry.loading!.catch(() => undefined);
    if (entry.state !== 'loaded') return false;
    await this.evict(entry, reason);
    return true;
  }

  /** Unloads models idle past the keep-alive. The pool runs it on a timer; tests may call it directly. */
  async sweep(): Promise<void> {
    const { keepAliveMs } = this.options;
    if (keepAliveMs < 0 || this.closed) return;
    const now = performance.now();
    for (const entry of [...this.entries.values()]) {
      if (entry.state !== 'loaded' || entry.spec.pinned || !entry.model!.isIdle()) continue;
      if (now - entry.lastUsed >= keepAliveMs) await this.evict(entry, 'keep_alive');
    }
  }

  /** Wakes loads that wait for room; the owner calls it when a model goes idle. */
  notifyIdle(): void {
    for (const wake of this.roomWaiters) wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.notifyIdle();
    const all = [...this.entries.values()];
    await Promise.all(all.map((e) => e.loading?.catch(() => undefined)));
    for (const entry of [...this.entries.values()]) {
      if (entry.state === 'loaded') await this.evict(entry, 'shutdown');
    }
  }

  private async loadEntry(entry: Entry<S, M>): Promise<M> {
    const { id } = entry.spec;
    try {
      await this.makeRoom(entry);
      const started = performance.now();
      const model = await this.options.load(entry.spec, entry.bytes);
      const ms = performance.now() - started;
      if (this.closed) {
        await model.unload();
        throw new CannotPlaceError('the worker is shutting down');
      }
      entry.model = model;
      entry.state = 'loaded';
      entry.lastUsed = performance.now();
      this.options.onLoaded?.(id, ms);
      return model;
    } catch (err) {
      this.entries.delete(id);
      this.notifyIdle();
      throw err;
    } finally {
      entry.loading = null;
    }
  }

  /** Evicts idle models, least recently used first, until `entry` fits; waits (bounded) when none is idle. */
  private async makeRoom(entry: Entry<S, M>): Promise<void> {
    const deadline = performance.now() + this.options.placeTimeoutMs;
    for (;;) {
      if (this.closed) throw new CannotPlaceError('the worker is shutting down');
      const over = this.usedBytes - this.options.budgetBytes;
      if (over <= 0) return;
      // bytes already on their way out count as freed: wait for them rather than evict more
      const pending = over - this.unloadingBytes();
      const victims = pending > 0 ? this.pickVictims(entry, pending) : [];
      if (victims && victims.length > 0) {
        for (const victim of victims) await this.evict(victim, 'lru');
        continue;
      }
      if (victims) {
        await this.waitForChange(deadline - performance.now());
        continue;
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new CannotPlaceError(
          `cannot place model ${entry.spec.id} (${formatBytes(entry.bytes)}): ${formatBytes(this.usedBytes - entry.bytes)} of ${formatBytes(this.options.budgetBytes)} is held by busy or pinned models`,
        );
      }
      this.options.log?.(`model ${entry.spec.id} waits for room: no idle model to evict`);
      await this.waitForChange(left);
    }
  }

  private unloadingBytes(): number {
    let bytes = 0;
    for (const e of this.entries.values()) if (e.state === 'unloading') bytes += e.bytes;
    return bytes;
  }

  /** The fewest least-recently-used idle models that free `over` bytes, or null if all of them would not. */
  private pickVictims(entry: Entry<S, M>, over: number): Entry<S, M>[] | null {
    const idle = [...this.entries.values()]
      .filter((e) => e !== entry && e.state === 'loaded' && !e.spec.pinned && e.model!.isIdle())
      .sort((a, b) => a.lastUsed - b.lastUsed);
    const victims: Entry<S, M>[] = [];
    let freed = 0;
    for (const e of idle) {
      if (freed >= over) break;
      victims.push(e);
      freed += e.bytes;
    }
    return freed >= over ? victims : null;
  }

  private async evict(entry: Entry<S, M>, reason: EvictionReason): Promise<void> {
    if (entry.state !== 'loaded') return;
    entry.state = 'unloading';
    const started = performance.now();
    try {
      await entry.model!.unload();
    } finally {
      this.entries.delete(entry.spec.id);
      this.options.log?.(
        `unloaded model ${entry.spec.id} (${reason}) in ${(performance.now() - started).toFixed(0)} ms, freeing ${formatBytes(entry.bytes)}`,
      );
      this.options.onEvicted?.(entry.spec.id, reason);
      this.notifyIdle();
    }
  }

  private waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.roomWaiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(1, Math.min(ms, 250)));
      this.roomWaiters.add(wake);
    });
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(2)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toFixed(1)} KiB`;
  return `${bytes} B`;
}

/** Parses a memory size: a byte count, or a number with KiB/MiB/GiB (or K/M/G, KB/MB/GB as powers of 1024). */
export function parseBytes(raw: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*$/i.exec(raw);
  if (!m) return null;
  const power = { '': 0, K: 1, M: 2, G: 3, T: 4 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const bytes = Math.round(Number(m[1]) * 1024 ** power);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null;
}
