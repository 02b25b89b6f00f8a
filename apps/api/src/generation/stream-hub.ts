/**
 * Reads this API instance's inbox and hands each request's events to its subscriber.
 *
 * Each job names this instance (`notify`), and the workers write the events of the requests it follows to its
 * inbox: one entry per worker write (one engine step) holding every such request's events. The hub reads it with
 * one blocking XREAD of one key, on a dedicated connection, and trims what it has read. A step of 64 rows costs
 * Redis one XADD and this process one read, where a stream per request cost 64 XADDs and an XREAD over 64 keys
 * (which Redis 7.0 answers, when blocked, with the first key that got an entry alone).
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { decodeInboxEntry, StreamEvent } from '@switchyard/batching';
import { RedisService } from '../redis/redis.service';

type Listener = (event: StreamEvent) => void;

/** How long one read blocks for (ms); it ends early as soon as an entry arrives. */
const BLOCK_MS = 5000;
/** Entries taken per read at most; more wait for the next read, which follows at once. */
const COUNT = 512;

type XReadReply = [string, [string, string[]][]][] | null;

@Injectable()
export class StreamHub implements OnApplicationShutdown {
  /** This API instance's id: jobs carry it (`notify`), and workers write its requests' events to its inbox. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger('StreamHub');
  private readonly reader: Redis;
  private readonly inbox: string;
  private readonly subscriptions = new Map<string, Listener>();
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly loop: Promise<void>;

  constructor(@Inject(RedisService) redis: Pick<RedisService, 'names' | 'duplicate'>) {
    this.reader = redis.duplicate('switchyard-api-streams');
    this.inbox = redis.names.inbox(this.instanceId);
    this.loop = this.run();
  }

  /**
   * Delivers the request's events until the returned function is called. Subscribe before the job is queued: the
   * inbox keeps nothing for a request nobody follows.
   */
  subscribe(requestId: string, listener: Listener): () => void {
    this.subscriptions.set(requestId, listener);
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
    return () => {
      this.subscriptions.delete(requestId);
    };
  }

  get open(): number {
    return this.subscriptions.size;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.reader.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    let lastId = '0';
    let trimmed = lastId;
    while (!this.closed) {
      try {
        if (this.subscriptions.size === 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        // One write: drop what was read already, then wait for what comes next.
        const pipeline = this.reader.pipeline();
        if (trimmed !== lastId) pipeline.xtrim(this.inbox, 'MINID', lastId);
        pipeline.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.inbox, lastId);
        trimmed = lastId;
        const results = (await pipeline.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
        const reply = results.at(-1)?.[1] as XReadReply;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            this.dispatch(decodeInboxEntry(fields));
          }
        }
      } catch (err) {
        if (this.closed) return;
        this.logger.warn(`reading the inbox failed: ${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Hands each event to its request's subscriber; events of requests nobody follows any more are dropped. */
  private dispatch(events: [string, StreamEvent][] | null): void {
    for (const [requestId, event] of events ?? []) {
      const listener = this.subscriptions.get(requestId);
      if (!listener) continue;
      try {
        listener(event);
      } catch (err) {
        this.logger.error(`a stream listener failed: ${(err as Error).message}`);
      }
    }
  }
}
