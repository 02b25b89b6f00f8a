/**
 * Reads every open token stream with one XREAD over all their keys, on one dedicated connection, and hands each
 * entry to its subscriber.
 *
 * It does not block in that XREAD: Redis 7.0 answers an XREAD blocked on many keys with the first key that gets an
 * entry alone, so a step that writes 64 streams would cost two reads over all 64 keys. Instead each job names this
 * instance (`notify`), and the worker's write rings this instance's doorbell after the entries. The hub sends a
 * BLPOP on the doorbell with the XREAD queued right behind it on the same connection: Redis runs the read the
 * moment the bell rings, and both answers come back together, in one round-trip per step.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { decodeStreamEntry, StreamEvent } from '@switchyard/batching';
import { RedisService } from '../redis/redis.service';

type Listener = (event: StreamEvent) => void;

interface Subscription {
  lastId: string;
  listener: Listener;
}

/** While streams are open, they are read at least this often even if no bell rings (seconds). */
const BELL_WAIT_S = 1;
/** Entries read per stream at most; a stream that returns this many is read again at once. */
const COUNT = 512;

type XReadReply = [string, [string, string[]][]][] | null;

@Injectable()
export class StreamHub implements OnApplicationShutdown {
  /** This API instance's id: workers ring its doorbell after writing to a stream it follows. */
  readonly instanceId = randomUUID();
  /** While streams are open, the longest wait for a bell before reading anyway (seconds). */
  bellWaitS = BELL_WAIT_S;
  private readonly logger = new Logger('StreamHub');
  private readonly reader: Redis;
  private readonly bell: string;
  private readonly subscriptions = new Map<string, Subscription>();
  /** Set by a subscription made while a read is in flight: that read does not cover it. */
  private keysChanged = false;
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly loop: Promise<void>;

  constructor(@Inject(RedisService) private readonly redis: Pick<RedisService, 'names' | 'duplicate'>) {
    this.reader = redis.duplicate('switchyard-api-streams');
    this.bell = redis.names.doorbell(this.instanceId);
    this.loop = this.run();
  }

  /** Delivers the stream's entries, from its first, until the returned function is called. */
  subscribe(requestId: string, listener: Listener): () => void {
    const key = this.redis.names.stream(requestId);
    this.subscriptions.set(key, { lastId: '0', listener });
    this.keysChanged = true;
    if (this.wake) {
      this.wake();
      this.wake = null;
    }
    return () => {
      this.subscriptions.delete(key);
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
    // Read without waiting for the bell: a subscription the last read missed, or a stream that may hold more.
    let readNow = false;
    while (!this.closed) {
      try {
        if (this.subscriptions.size === 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        this.keysChanged = false;
        const keys = [...this.subscriptions.keys()];
        const ids = keys.map((k) => this.subscriptions.get(k)!.lastId);
        // one write: the read runs as soon as the bell rings (or at once), and both answers come back together
        const pipeline = this.reader.pipeline();
        if (!readNow) pipeline.blpop(this.bell, this.bellWaitS);
        pipeline.xread('COUNT', COUNT, 'STREAMS', ...keys, ...ids);
        const results = (await pipeline.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
        readNow = this.dispatch(results.at(-1)?.[1] as XReadReply) || this.keysChanged;
      } catch (err) {
        if (this.closed) return;
        this.logger.warn(`reading token streams failed: ${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Hands each entry to its subscriber; true if some stream filled the read's COUNT and may hold more. */
  private dispatch(reply: XReadReply): boolean {
    if (!reply) return false;
    let more = false;
    for (const [key, entries] of reply) {
      if (entries.length >= COUNT) more = true;
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
    return more;
  }
}
