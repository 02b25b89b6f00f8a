/**
 * The pool of models one worker holds, in two tiers with a budget each.
 * - **Resident** models take requests. Each costs its device bytes (`cost`: weights, KV reservation, working memory),
 *   counted from the moment its load starts, within `budgetBytes`.
 * - **Parked** models keep their session (weights, prepacked kernels, a warm thread) but take no requests and hold
 *   no KV cache; each costs `parkedCost` within `hostBudgetBytes`. One comes back in tens of milliseconds where a
 *   load from disk takes hundreds.
 * Loading or resuming a model that does not fit moves the least recently used idle resident models out: parked
 * when the host budget has room (making room there by unloading the least recently used parked models), unloaded
 * otherwise. Pinned models, and models whose keep-alive is -1, never move. If that is not enough, the load waits,
 * bounded, for a model to go idle, and otherwise fails with `CannotPlaceError`. One load at a time per model: its
 * callers share it. An idle model is parked after its keep-alive (unloaded at once when the keep-alive is 0).
 *
 * The pool knows nothing of ONNX or queues: the caller supplies `load`, and each loaded handle says whether it is
 * idle and how to park, resume and unload itself.
 */
import { performance } from 'node:perf_hooks';

export interface PooledModel {
  /** No running and no waiting request. */
  isIdle(): boolean;
  /** Stops taking work and frees the model's memory (for ONNX Runtime: `session.release()`). */
  unload(): Promise<void>;
  /** Stops taking work, keeping what comes back fast; a model without it is unloaded instead. */
  park?(): Promise<void>;
  /** Takes work again after `park`. */
  resume?(): Promise<void>;
}

export interface PoolSpec {
  id: string;
  pinned: boolean;
  /** The model's own keep-alive in milliseconds (-1: never, 0: unload once idle); null takes the pool's. */
  keepAliveMs?: number | null;
}

export type EvictionReason = 'lru' | 'keep_alive' | 'unload' | 'shutdown';

/** Where a model is: on its way in, resident, on its way out, or parked. */
export type PoolState = 'loading' | 'resuming' | 'loaded' | 'parking' | 'parked' | 'unloading';

export interface ModelPoolOptions<S extends PoolSpec, M extends PooledModel> {
  budgetBytes: number;
  /** The parked tier's budget; 0 turns parking off (moved-out models are unloaded). */
  hostBudgetBytes?: number;
  /** Idle time before a model is parked, in milliseconds; a negative value means never. */
  keepAliveMs: number;
  /** How long a load that does not fit waits for room. */
  placeTimeoutMs: number;
  /** The device bytes a resident model costs, known before it loads. */
  cost(spec: S): number;
  /** The host bytes a parked model costs. */
  parkedCost?(spec: S): number;
  /** Loads a model that has `bytes` reserved for it (what `cost` said). */
  load(spec: S, bytes: number): Promise<M>;
  onLoaded?(id: string, ms: number): void;
  onResumed?(id: string, ms: number): void;
  onParked?(id: string, reason: EvictionReason): void;
  onEvicted?(id: string, reason: EvictionReason): void;
  log?(message: string): void;
}

/** The model cannot fit on this worker now: the caller routes elsewhere. */
export class CannotPlaceError extends Error {
  override name = 'CannotPlaceError';
}

interface Entry<S, M> {
  spec: S;
  /** Device bytes while resident (or on the way in or out), host bytes while parked. */
  bytes: number;
  hostBytes: number;
  state: PoolState;
  model: M | null;
  /** The load or resume in progress. */
  loading: Promise<M> | null;
  lastUsed: number;
  /** The keep-alive the last request asked for (Ollama's `keep_alive`), over the spec's and the pool's. */
  keepAliveMs: number | null;
}

export interface PoolEntryInfo {
  id: string;
  state: PoolState;
  bytes: number;
  pinned: boolean;
}

const ON_DEVICE: ReadonlySet<PoolState> = new Set(['loading', 'resuming', 'loaded', 'unloading']);
const PARKED: ReadonlySet<PoolState> = new Set(['parking', 'parked']);

export class ModelPool<S extends PoolSpec, M extends PooledModel> {
  private readonly entries = new Map<string, Entry<S, M>>();
  private readonly roomWaiters = new Set<() => void>();
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly options: ModelPoolOptions<S, M>) {
    const { keepAliveMs } = options;
    // per-model keep-alives may be short: sweep at least every second
    this.sweeper = setInterval(
      () => void this.sweep(),
      keepAliveMs > 0 ? Math.min(1000, Math.max(50, keepAliveMs / 4)) : 1000,
    );
    this.sweeper.unref();
  }

  get budgetBytes(): number {
    return this.options.budgetBytes;
  }

  get hostBudgetBytes(): number {
    return this.options.hostBudgetBytes ?? 0;
  }

  /** Device bytes held or reserved by models loading, resident, resuming or on their way out. */
  get usedBytes(): number {
    let used = 0;
    for (const entry of this.entries.values()) if (ON_DEVICE.has(entry.state)) used += entry.bytes;
    return used;
  }

  /** Host bytes held by parked models. */
  get parkedBytes(): number {
    let used = 0;
    for (const entry of this.entries.values()) if (PARKED.has(entry.state)) used += entry.hostBytes;
    return used;
  }

  /** The resident model without marking it used (for heartbeats and listings). */
  peek(id: string): M | undefined {
    const entry = this.entries.get(id);
    return entry?.state === 'loaded' ? entry.model! : undefined;
  }

  /** Loading, resident or resuming: the model takes (or is about to take) requests here. */
  has(id: string): boolean {
    const state = this.entries.get(id)?.state;
    return state === 'loading' || state === 'loaded' || state === 'resuming';
  }

  state(id: string): PoolState | undefined {
    return this.entries.get(id)?.state;
  }

  /** Marks a model as used now, so it is the last that LRU eviction picks. */
  touch(id: string): void {
    const entry = this.entries.get(id);
    if (entry) entry.lastUsed = performance.now();
  }

  /**
   * Sets a model's keep-alive from a request (Ollama's `keep_alive`: the last request's wins): -1 keeps it resident
   * through memory pressure, 0 unloads it once idle, null returns to the spec's or the pool's.
   */
  setKeepAlive(id: string, ms: number | null): void {
    const entry = this.entries.get(id);
    if (entry) entry.keepAliveMs = ms;
  }

  list(): PoolEntryInfo[] {
    return [...this.entries.values()].map((e) => ({
      id: e.spec.id,
      state: e.state,
      bytes: PARKED.has(e.state) ? e.hostBytes : e.bytes,
      pinned: e.spec.pinned,
    }));
  }

  /** The model resident, loading or resuming it (once) if needed. Rejects with `CannotPlaceError` when there is no room. */
  async ensure(spec: S): Promise<M> {
    if (this.closed) throw new CannotPlaceError('the worker is shutting down');
    for (;;) {
      const entry = this.entries.get(spec.id);
      if (!entry) break;
      entry.lastUsed = performance.now();
      if (entry.state === 'loaded') {
        entry.spec.pinned = spec.pinned;
        entry.spec.keepAliveMs = spec.keepAliveMs;
        return entry.model!;
      }
      if (entry.state === 'loading' || entry.state === 'resuming') return entry.loading!;
      if (entry.state === 'parked') {
        entry.spec = { ...spec };
        entry.state = 'resuming';
        entry.loading = this.resumeEntry(entry);
        return entry.loading;
      }
      // on its way out: wait for it to finish, then load again
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
      hostBytes: this.options.parkedCost?.(spec) ?? bytes,
      state: 'loading',
      model: null,
      loading: null,
      lastUsed: performance.now(),
      keepAliveMs: null,
    };
    this.entries.set(spec.id, entry);
    entry.loading = this.loadEntry(entry);
    return entry.loading;
  }

  /** Unloads a model now, resident or parked, whether idle or not (its `unload` drains it). */
  async unload(id: string, reason: EvictionReason = 'unload'): Promise<boolean> {
    const entry = this.entries.get(id);
    if (!entry) return false;
    if (entry.state === 'loading' || entry.state === 'resuming') await entry.loading!.catch(() => undefined);
    if (entry.state !== 'loaded' && entry.state !== 'parked') return false;
    await this.remove(entry, reason);
    return true;
  }

  /** A model's keep-alive: the last request's, else the spec's, else the pool's. */
  private keepAliveOf(entry: Entry<S, M>): number {
    return entry.keepAliveMs ?? entry.spec.keepAliveMs ?? this.options.keepAliveMs;
  }

  /**
   * Never moved out, for room or age: pinned, or kept alive with -1 by its request or its registry entry. (The
   * pool's own `--keep-alive -1` only stops the idle timer: such models still make room for others.)
   */
  private isHeld(entry: Entry<S, M>): boolean {
    const own = entry.keepAliveMs ?? entry.spec.keepAliveMs ?? null;
    return entry.spec.pinned || (own !== null && own < 0);
  }

  /**
   * Moves out resident models idle past their keep-alive: parked, or unloaded when the keep-alive is 0. The pool
   * runs it on a timer and when a model goes idle; tests may call it directly.
   */
  async sweep(): Promise<void> {
    if (this.closed) return;
    const now = performance.now();
    for (const entry of [...this.entries.values()]) {
      if (entry.state !== 'loaded' || this.isHeld(entry) || !entry.model!.isIdle()) continue;
      const keepAlive = this.keepAliveOf(entry);
      if (keepAlive < 0) continue;
      if (keepAlive === 0) await this.remove(entry, 'keep_alive');
      else if (now - entry.lastUsed >= keepAlive) await this.moveOut(entry, 'keep_alive');
    }
  }

  /** Wakes loads that wait for room and applies keep-alives of 0; the owner calls it when a model goes idle. */
  notifyIdle(): void {
    for (const wake of this.roomWaiters) wake();
    if ([...this.entries.values()].some((e) => e.state === 'loaded' && this.keepAliveOf(e) === 0)) void this.sweep();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.notifyIdle();
    const all = [...this.entries.values()];
    await Promise.all(all.map((e) => Promise.resolve(e.loading).catch(() => undefined)));
    for (const entry of [...this.entries.values()]) {
      if (entry.state === 'loaded' || entry.state === 'parked') await this.remove(entry, 'shutdown');
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

  private async resumeEntry(entry: Entry<S, M>): Promise<M> {
    const { id } = entry.spec;
    const model = entry.model!;
    try {
      await this.makeRoom(entry);
      const started = performance.now();
      await model.resume!();
      entry.state = 'loaded';
      entry.lastUsed = performance.now();
      this.options.onResumed?.(id, performance.now() - started);
      return model;
    } catch (err) {
      // a model that cannot come back is dropped: the next request loads it afresh
      entry.state = 'parked';
      await this.remove(entry, 'unload').catch(() => undefined);
      throw err;
    } finally {
      entry.loading = null;
    }
  }

  /** Moves resident models out, least recently used first, until `entry` fits; waits (bounded) when none can go. */
  private async makeRoom(entry: Entry<S, M>): Promise<void> {
    const deadline = performance.now() + this.options.placeTimeoutMs;
    for (;;) {
      if (this.closed) throw new CannotPlaceError('the worker is shutting down');
      const over = this.usedBytes - this.options.budgetBytes;
      if (over <= 0) return;
      // bytes already on their way out count as freed: wait for them rather than move out more
      const pending = over - this.leavingBytes();
      const victims = pending > 0 ? this.pickVictims(entry, pending) : [];
      if (victims && victims.length > 0) {
        for (const victim of victims) await this.moveOut(victim, 'lru');
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
      this.options.log?.(`model ${entry.spec.id} waits for room: no idle model to move out`);
      await this.waitForChange(left);
    }
  }

  /** Device bytes on their way out (unloading or parking). */
  private leavingBytes(): number {
    let bytes = 0;
    for (const e of this.entries.values()) if (e.state === 'unloading' || e.state === 'parking') bytes += e.bytes;
    return bytes;
  }

  /** The fewest least-recently-used idle resident models that free `over` bytes, or null if all of them would not. */
  private pickVictims(entry: Entry<S, M>, over: number): Entry<S, M>[] | null {
    const idle = [...this.entries.values()]
      .filter((e) => e !== entry && e.state === 'loaded' && !this.isHeld(e) && e.model!.isIdle())
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

  /** A resident model out of the device budget: parked if it can be, unloaded otherwise. */
  private async moveOut(entry: Entry<S, M>, reason: EvictionReason): Promise<void> {
    if (entry.state !== 'loaded') return;
    const host = this.hostBudgetBytes;
    if (!entry.model!.park || entry.hostBytes > host) return this.remove(entry, reason);
    // room in the parked tier: unload the least recently used parked models
    const parked = [...this.entries.values()]
      .filter((e) => e.state === 'parked')
      .sort((a, b) => a.lastUsed - b.lastUsed);
    while (this.parkedBytes + entry.hostBytes > host && parked.length > 0) await this.remove(parked.shift()!, 'lru');
    if (this.parkedBytes + entry.hostBytes > host) return this.remove(entry, reason);
    entry.state = 'parking';
    const started = performance.now();
    try {
      await entry.model!.park();
      entry.state = 'parked';
      this.options.log?.(
        `parked model ${entry.spec.id} (${reason}) in ${(performance.now() - started).toFixed(0)} ms: ${formatBytes(entry.bytes)} of device memory free, ${formatBytes(entry.hostBytes)} parked`,
      );
      this.options.onParked?.(entry.spec.id, reason);
    } catch (err) {
      this.options.log?.(`parking model ${entry.spec.id} failed (${(err as Error).message}): unloading it`);
      entry.state = 'loaded';
      await this.remove(entry, reason);
    } finally {
      this.notifyIdle();
    }
  }

  /** Unloads a resident or parked model for good. */
  private async remove(entry: Entry<S, M>, reason: EvictionReason): Promise<void> {
    if (entry.state !== 'loaded' && entry.state !== 'parked') return;
    const wasParked = entry.state === 'parked';
    entry.state = 'unloading';
    const started = performance.now();
    try {
      await entry.model!.unload();
    } finally {
      this.entries.delete(entry.spec.id);
      const freed = wasParked ? `${formatBytes(entry.hostBytes)} parked` : formatBytes(entry.bytes);
      this.options.log?.(
        `unloaded model ${entry.spec.id} (${reason}${wasParked ? ', parked' : ''}) in ${(performance.now() - started).toFixed(0)} ms, freeing ${freed}`,
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
