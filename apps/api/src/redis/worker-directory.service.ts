/**
 * The live workers, as their heartbeats in Redis say (read every 250 ms in the background, and on demand when that
 * read is late), and their metrics snapshots; both found through the workers' index (`worker-registry.ts`), never
 * by scanning keys.
 */
import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import {
  Heartbeat,
  labelSnapshot,
  MetricsSnapshot,
  parseHeartbeat,
  parseMetricsSnapshot,
  readWorkerEntries,
} from '@switchyard/protocol';
import { RedisService } from './redis.service';

/** A read of the heartbeats this recent is used as it is. */
const FRESH_MS = 250;
/**
 * A read this recent that finds the model held answers `holders` at once, while a fresh read is fetched behind it.
 * Otherwise every request arriving during a read would wait for its reply, which a busy event loop takes in only
 * after the burst of requests it is handling: measured on bench:e2e's workload, that cost 65 ms of TTFT p50. A
 * negative answer (no worker holds the model, none is live) is always read fresh, since it sends a load or a 503.
 */
const STALE_POSITIVE_MS = 2_000;

export interface Holders {
  loaded: Heartbeat[];
  loading: Heartbeat[];
  live: number;
}

@Injectable()
export class WorkerDirectory implements OnApplicationBootstrap, OnModuleDestroy {
  /** The last read that succeeded, and when it was sent. */
  private last: { at: number; beats: Heartbeat[] } | null = null;
  private reading: Promise<Heartbeat[]> | null = null;
  private poll: NodeJS.Timeout | null = null;

  constructor(private readonly redis: RedisService) {}

  onApplicationBootstrap(): void {
    this.keepFresh(FRESH_MS);
  }

  onModuleDestroy(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }

  /**
   * Reads the heartbeats every `intervalMs` in the background, so that a request, even the first of a burst after
   * a quiet spell, finds a fresh read instead of waiting for one. It costs a ZRANGE and an MGET per interval.
   */
  keepFresh(intervalMs: number): void {
    this.onModuleDestroy();
    this.poll = setInterval(() => {
      this.read().catch(() => undefined);
    }, intervalMs);
    this.poll.unref();
  }

  live(): Promise<Heartbeat[]> {
    if (this.last && this.now() - this.last.at <= FRESH_MS) return Promise.resolve(this.last.beats);
    return this.read();
  }

  /** Live workers that have the model loaded, and those loading it. */
  async holders(model: string): Promise<Holders> {
    const last = this.last;
    if (last && this.now() - last.at <= STALE_POSITIVE_MS) {
      const found = holdersIn(last.beats, model);
      if (found.loaded.length > 0) {
        if (this.now() - last.at > FRESH_MS) this.read().catch(() => undefined);
        return found;
      }
    }
    return holdersIn(await this.live(), model);
  }

  /** One read at a time; callers during it share its answer. */
  private read(): Promise<Heartbeat[]> {
    if (!this.reading) {
      const at = this.now();
      const { redis, names } = this.redis;
      this.reading = readWorkerEntries(redis, names, (id) => names.worker(id))
        .then((entries) => {
          const beats = entries.map(([, v]) => parseHeartbeat(v)).filter((b): b is Heartbeat => b !== null);
          this.last = { at, beats };
          return beats;
        })
        .finally(() => (this.reading = null));
    }
    return this.reading;
  }

  /** The clock the reads' ages are measured on (a spec moves it). */
  protected now(): number {
    return Date.now();
  }

  /** Every live worker's metrics snapshot, tagged with its id; one that does not parse is left out. */
  async metrics(): Promise<MetricsSnapshot[]> {
    const { redis, names } = this.redis;
    const entries = await readWorkerEntries(redis, names, (id) => names.metrics(id));
    const snapshots: MetricsSnapshot[] = [];
    for (const [id, raw] of entries) {
      const snapshot = parseMetricsSnapshot(raw);
      if (snapshot) snapshots.push(labelSnapshot(snapshot, { worker: id }));
    }
    return snapshots;
  }
}

function holdersIn(beats: Heartbeat[], model: string): Holders {
  const usable = beats.filter((b) => !b.draining);
  const state = (b: Heartbeat) => b.models.find((m) => m.id === model)?.state;
  return {
    loaded: usable.filter((b) => state(b) === 'loaded'),
    loading: usable.filter((b) => state(b) === 'loading'),
    live: usable.length,
  };
}
