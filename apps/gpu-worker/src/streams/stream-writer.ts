/**
 * Writes stream events to `gen:<request id>`. Events pushed in one tick (one engine step emits every row's token
 * synchronously) go out as one Redis pipeline: one round-trip per step, not per token. A stream is capped in
 * length and expires after its last start or end entry.
 */
import type { Redis } from 'ioredis';
import {
  encodeStreamEvent,
  RedisNames,
  STREAM_FIELD,
  STREAM_MAX_LEN,
  STREAM_TTL_S,
  StreamEvent,
} from '@switchyard/batching';

export class StreamWriter {
  private pending: StreamEvent[] = [];
  private keys: string[] = [];
  private scheduled = false;
  private inFlight: Promise<void> = Promise.resolve();

  constructor(
    private readonly redis: Redis,
    private readonly names: RedisNames,
    private readonly onError: (err: Error) => void,
  ) {}

  push(requestId: string, event: StreamEvent): void {
    const key = this.names.stream(requestId);
    const n = this.pending.length;
    // A request's last token and its final event come from the same step: one entry carries both.
    if (event.type === 'final' && n > 0 && this.keys[n - 1] === key) {
      const previous = this.pending[n - 1];
      if (previous.type === 'token' && previous.attempt === event.attempt) {
        const { attempt: _attempt, ...lastToken } = previous;
        this.pending[n - 1] = { ...event, lastToken };
        return;
      }
    }
    this.pending.push(event);
    this.keys.push(key);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Resolves once everything pushed so far is in Redis. */
  async settle(): Promise<void> {
    if (this.scheduled) this.flush();
    await this.inFlight;
  }

  private readonly flush = (): void => {
    if (!this.scheduled) return;
    this.scheduled = false;
    const events = this.pending;
    const keys = this.keys;
    this.pending = [];
    this.keys = [];
    const pipeline = this.redis.pipeline();
    for (let i = 0; i < events.length; i++) {
      const event = events[i];
      pipeline.xadd(keys[i], 'MAXLEN', '~', STREAM_MAX_LEN, '*', STREAM_FIELD, encodeStreamEvent(event));
      if (event.type !== 'token') pipeline.expire(keys[i], STREAM_TTL_S);
    }
    const sent = pipeline.exec().then(
      (results) => {
        const failed = results?.find(([err]) => err);
        if (failed) this.onError(failed[0]!);
      },
      (err: Error) => this.onError(err),
    );
    this.inFlight = this.inFlight.then(() => sent);
  };
}
