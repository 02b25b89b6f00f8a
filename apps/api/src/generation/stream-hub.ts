/**
 * Reads every open token stream with one blocking XREAD over all their keys, on one dedicated connection, and
 * hands each entry to its subscriber. A stream opened while the read blocks wakes it with CLIENT UNBLOCK, so a
 * new request's first token is not held back by the block timeout.
 */
import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { decodeStreamEntry, StreamEvent } from '@switchyard/batching';
import { RedisService } from '../redis/redis.service';

type Listener = (event: StreamEvent) => void;

interface Subscription {
  lastId: string;
  listener: Listener;
}

const BLOCK_MS = 5000;
const COUNT = 512;

@Injectable()
export class StreamHub implements OnApplicationShutdown {
  private readonly logger = new Logger('StreamHub');
  private readonly reader: Redis;
  private readonly subscriptions = new Map<string, Subscription>();
  private readerId: number | null = null;
  private blocked = false;
  /** Bumped by every subscribe; the loop notes which version its current XREAD covers. */
  private keysVersion = 0;
  private readVersion = 0;
  private unblocking = false;
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly loop: Promise<void>;

  constructor(private readonly redis: RedisService) {
    this.reader = redis.duplicate('switchyard-api-streams');
    this.loop = this.run();
  }

  /** Delivers the stream's entries, from its first, until the returned function is called. */
  subscribe(requestId: string, listener: Listener): () => void {
    const key = this.redis.names.stream(requestId);
    this.subscriptions.set(key, { lastId: '0', listener });
    this.keysVersion++;
    this.interrupt();
    return () => {
      this.subscriptions.delete(key);
    };
  }

  get open(): number {
    return this.subscriptions.size;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.interrupt();
    this.reader.disconnect();
    await this.loop;
  }

  /** Makes the loop re-read its key list now: wake it if idle, unblock it if it waits in XREAD. */
  private interrupt(): void {
    if (this.wake) {
      this.wake();
      this.wake = null;
      return;
    }
    if (!this.blocked || this.unblocking || this.readerId === null) return;
    this.unblocking = true;
    this.redis.redis
      .client('UNBLOCK', this.readerId)
      .then((unblocked) => {
        this.unblocking = false;
        // 0: the XREAD had not reached Redis yet; try again while it still misses a key
        if (Number(unblocked) === 0 && this.blocked && this.readVersion < this.keysVersion) {
          setTimeout(() => this.interrupt(), 1);
        }
      })
      .catch((err: Error) => {
        this.unblocking = false;
        this.logger.warn(`CLIENT UNBLOCK failed: ${err.message}`);
      });
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        this.readerId ??= Number(await this.reader.client('ID'));
        if (this.subscriptions.size === 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        this.readVersion = this.keysVersion;
        const keys = [...this.subscriptions.keys()];
        const ids = keys.map((k) => this.subscriptions.get(k)!.lastId);
        this.blocked = true;
        const reply = (await this.reader.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids)) as
          [string, [string, string[]][]][] | null;
        this.blocked = false;
        if (!reply) continue;
        for (const [key, entries] of reply) {
          const sub = this.subscriptions.get(key);
          if (!sub) continue;
          for (const [id, fields] of entries) {
            sub.lastId = id;
            const event = decodeStreamEntry(fields);
            if (!event) continue;
            try {
              sub.listener(event);
            } catch (err) {
              this.logger.error(`a stream listener failed: ${(err as Error).message}`);
            }
            if (!this.subscriptions.has(key)) break;
          }
        }
      } catch (err) {
        this.blocked = false;
        if (this.closed) return;
        this.readerId = null;
        this.logger.warn(`reading token streams failed: ${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}
