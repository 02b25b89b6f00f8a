/**
 * The live workers, as their heartbeats in Redis say (read at most every 250 ms), and their metrics snapshots.
 */
import { Injectable } from '@nestjs/common';
import { Heartbeat, MetricFamily, withLabels } from '@switchyard/batching';
import { RedisService } from './redis.service';

const FRESH_MS = 250;

@Injectable()
export class WorkerDirectory {
  private cache: { at: number; beats: Promise<Heartbeat[]> } | null = null;

  constructor(private readonly redis: RedisService) {}

  live(): Promise<Heartbeat[]> {
    const now = Date.now();
    if (!this.cache || now - this.cache.at > FRESH_MS) {
      const beats = this.entries(this.redis.names.workerPattern).then((entries) =>
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
    const prefix = this.redis.names.metrics('').length;
    const entries = await this.entries(this.redis.names.metricsPattern);
    return entries.map(([key, v]) => withLabels(JSON.parse(v) as MetricFamily[], { worker: key.slice(prefix) }));
  }

  private async keys(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    return keys.sort();
  }

  /** Keys matching the pattern with their values; keys that expired between SCAN and MGET are left out. */
  private async entries(pattern: string): Promise<[string, string][]> {
    const keys = await this.keys(pattern);
    if (keys.length === 0) return [];
    const values = await this.redis.redis.mget(keys);
    return keys.flatMap((key, i) => (values[i] === null ? [] : [[key, values[i]] as [string, string]]));
  }
}
