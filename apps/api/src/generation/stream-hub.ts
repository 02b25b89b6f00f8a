/**
 * Reads this API instance's inbox and hands each request's events to its subscriber.
 *
 * Each job names this instance (`notify`), and the workers write the events of the requests it follows to its
 * inbox: one entry per worker write (one engine step) holding every such request's events. The hub reads it with
 * one blocking XREAD of one key, on a dedicated connection, and trims what it has read. A step of 64 rows costs
 * Redis one XADD and this process one read, where a stream per request cost 64 XADDs and an XREAD over 64 keys
 * (which Redis 7.0 answers, when blocked, with the first key that got an entry alone).
 *
 * When the connection to Redis is lost for longer than `LOST_AFTER_MS`, every request followed then fails: events
 * written meanwhile may be gone with the Redis that held them, and a client should hear so in seconds, not wait
 * for a stream that may never come.
 */
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { decodeInboxEntry, StreamEvent } from '@switchyard/protocol';
import { RedisService } from '../redis/redis.service';

type Listener = (event: StreamEvent) => void;
/**
 * Called when events the request may have had were lost: trimmed from the inbox before this instance read them
 * (`trimmed`), or gone with a connection to Redis that did not come back in time (`disconnected`).
 */
type OnLost = (message: string, cause: 'trimmed' | 'disconnected') => void;

interface Subscription {
  listener: Listener;
  onLost?: OnLost;
}

/** How long one read blocks for (ms); it ends early as soon as an entry arrives. */
const BLOCK_MS = 5000;
/** Entries taken per read at most; more wait for the next read, which follows at once. */
const COUNT = 512;
/** How long the reader's connection may be down before the requests it follows fail. */
export const LOST_AFTER_MS = 2000;

type XReadReply = [string, [string, string[]][]][] | null;

@Injectable()
export class StreamHub implements OnApplicationShutdown {
  /** This API instance's id: jobs carry it (`notify`), and workers write its requests' events to its inbox. */
  readonly instanceId = randomUUID();
  private readonly logger = new Logger('StreamHub');
  private readonly reader: Redis;
  private readonly inbox: string;
  private readonly subscriptions = new Map<string, Subscription>();
  private wake: (() => void) | null = null;
  private closed = false;
  private readonly loop: Promise<void>;
  private disconnected: NodeJS.Timeout | null = null;

  constructor(@Inject(RedisService) redis: Pick<RedisService, 'names' | 'duplicate'>) {
    this.reader = redis.duplicate('switchyard-api-streams');
    this.inbox = redis.names.inbox(this.instanceId);
    this.reader.on('close', () => {
      if (this.closed || this.disconnected) return;
      this.disconnected = setTimeout(
        () => this.failAll('the connection to Redis was lost', 'disconnected'),
        LOST_AFTER_MS,
      );
    });
    this.reader.on('ready', () => {
      if (this.disconnected) clearTimeout(this.disconnected);
      this.disconnected = null;
    });
    this.loop = this.run();
  }

  /**
   * Delivers the request's events until the returned function is called. Subscribe before the job is queued: the
   * inbox keeps nothing for a request nobody follows. `onLost` hears of events lost before they were read.
   */
  subscribe(requestId: string, listener: Listener, onLost?: OnLost): () => void {
    this.subscriptions.set(requestId, { listener, onLost });
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
    if (this.disconnected) clearTimeout(this.disconnected);
    this.wake?.();
    this.reader.disconnect();
    await this.loop;
  }

  private async run(): Promise<void> {
    let lastId = '0';
    /** Whether the last read took entries, which the next read's trim drops. */
    let toTrim = false;
    while (!this.closed) {
      try {
        if (this.subscriptions.size === 0) {
          await new Promise<void>((resolve) => (this.wake = resolve));
          continue;
        }
        // One write: drop what was read already, then wait for what comes next.
        const from = lastId;
        const pipeline = this.reader.pipeline();
        if (toTrim) pipeline.xtrim(this.inbox, 'MINID', from);
        pipeline.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', this.inbox, from);
        const results = (await pipeline.exec()) ?? [];
        for (const [err] of results) if (err) throw err;
        const reply = results.at(-1)?.[1] as XReadReply;
        let read = 0;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            lastId = id;
            read++;
            this.dispatch(decodeInboxEntry(fields));
          }
        }
        toTrim = read > 0;
        // A full read means a backlog: the inbox's cap may have trimmed entries this instance never read.
        if (read >= COUNT) await this.checkLost(from);
      } catch (err) {
        if (this.closed) return;
        this.logger.warn(`reading the inbox failed: ${(err as Error).message}; retrying`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Fails every request followed now if the inbox lost entries after `from` (the id read from): the cap trims the
   * oldest entries, and this instance's own trims only ever take entries before the one it read from.
   */
  private async checkLost(from: string): Promise<void> {
    const info = (await this.reader.xinfo('STREAM', this.inbox)) as unknown[];
    const at = info.indexOf('max-deleted-entry-id');
    const deleted = at >= 0 ? String(info[at + 1]) : '0-0';
    if (compareIds(deleted, from) <= 0) return;
    this.logger.error(`the inbox lost entries after ${from} (up to ${deleted}): failing the requests followed now`);
    this.failAll('this API fell too far behind its inbox and lost events of this request; retry it', 'trimmed');
  }

  /** Fails every request followed now with `message`. */
  private failAll(message: string, cause: 'trimmed' | 'disconnected'): void {
    this.disconnected = null;
    if (this.subscriptions.size === 0) return;
    this.logger.error(`${message}: failing the ${this.subscriptions.size} requests followed now`);
    for (const [requestId, sub] of [...this.subscriptions]) {
      this.subscriptions.delete(requestId);
      sub.onLost?.(message, cause);
    }
  }

  /** Hands each event to its request's subscriber; events of requests nobody follows any more are dropped. */
  private dispatch(events: [string, StreamEvent][] | null): void {
    for (const [requestId, event] of events ?? []) {
      const sub = this.subscriptions.get(requestId);
      if (!sub) continue;
      try {
        sub.listener(event);
      } catch (err) {
        this.logger.error(`a stream listener failed: ${(err as Error).message}`);
      }
    }
  }
}

/** Orders two stream ids (`ms-seq`). */
export function compareIds(a: string, b: string): number {
  const [am, as = '0'] = a.split('-');
  const [bm, bs = '0'] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}
