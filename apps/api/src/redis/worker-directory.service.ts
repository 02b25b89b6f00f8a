/**
 * The live workers, as their heartbeats in Redis say (read at most every 250 ms), and their metrics snapshots; both
 * found through the workers' index (`worker-registry.ts`), never by scanning keys.
 */
import { Injectable } from '@nestjs/common';
import { Heartbeat, MetricFamily, readWorkerEntries, withLabels } from '@switchyard/batching';
import { RedisService } from './redis.service';

const FRESH_MS = 250;

@Injectable()
export class WorkerDirectory {
  private cache: { at: number; beats: Promise<Heartbeat[]> } | null = null;

  constructor(private readonly redis: RedisService) {}

  live(): Promise<Heartbeat[]> {
    const now = Date.now();
    if (!this.cache || now - this.cache.at > FRESH_MS) {
      const { redis, names } = this.redis;
      const beats = readWorkerEntries(redis, names, (id) => names.worker(id)).then((entries) =>
        entries.map(([, v]) => JSON.parse(v) as Heartbeat),
      );
      this.cache = { at: now, beats };
      beats.catch(() => (this.cache = null));
    }
    return this.cache.beats;
  }

  /** Live workers that have the model loaded, and those loading it. */
  async holders(model: string): Promise<{ loaded: Heartbeat[]; loading: Heartbeat[]; live: number }> {
    const beats = await this.live();
    const usable = beats.filter((b) => !b.draining);
    const state = (b: Heartbeat) => b.models.find((m) => m.id === model)?.state;
    return {
      loaded: usable.filter((b) => state(b) === 'loaded'),
      loading: usable.filter((b) => state(b) === 'loading'),
      live: usable.length,
    };
  }

  /** Every live worker's metrics, tagged with its id. */
  async metrics(): Promise<MetricFamily[][]> {
    const { redis, names } = this.redis;
    const entries = await readWorkerEntries(redis, names, (id) => names.metrics(id));
    return entries.map(([id, v]) => withLabels(JSON.parse(v) as MetricFamily[], { worker: id }));
  }
}
