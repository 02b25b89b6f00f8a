/**
 * Whether a request may go in now: the in-flight cap (`--max-concurrent-requests`), which turns excess requests
 * away with 429 at once rather than queueing them without bound; the key's rate limits (a reservation of the prompt
 * plus `max_new_tokens`); and, per model, the queue-wait estimate the fallback chain uses to pass over a model
 * whose queue waits too long on every worker that holds it.
 */
import type { Principal } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import type { ApiConfig } from '../config/api-config';
import type { RateLimiter, Reservation } from '../limits/rate-limiter.service';
import type { ApiMetrics } from '../metrics/api-metrics';
import type { WorkerDirectory } from '../redis/worker-directory.service';

export class Admission {
  private running = 0;

  constructor(
    private readonly metrics: Pick<ApiMetrics, 'inFlight'>,
    private readonly limiter: Pick<RateLimiter, 'reserve'>,
    private readonly workers: Pick<WorkerDirectory, 'holders'>,
    private readonly config: Pick<ApiConfig, 'maxConcurrentRequests' | 'fallbackQueueWaitMs'>,
  ) {}

  /** Takes an in-flight slot or throws 429 (the caller counts the failure); the caller must call `release` once. */
  admit(): void {
    if (this.running >= this.config.maxConcurrentRequests) throw ApiError.overloaded();
    this.running++;
    this.metrics.inFlight.set(this.running);
  }

  release(): void {
    this.running--;
    this.metrics.inFlight.set(this.running);
  }

  /** Reserves `tokens` against the key's rate limits (throws 429 past them); settle it with the tokens used. */
  reserve(principal: Principal, tokens: number): Promise<Reservation> {
    return this.limiter.reserve(principal, tokens);
  }

  /** A model's queue waits too long on every worker that holds it. */
  async overloaded(id: string): Promise<boolean> {
    const { loaded } = await this.workers.holders(id);
    if (loaded.length === 0) return false;
    return loaded.every(
      (w) => (w.models.find((m) => m.id === id)?.oldestQueuedMs ?? 0) > this.config.fallbackQueueWaitMs,
    );
  }
}
