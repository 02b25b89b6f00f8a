/**
 * Per-key request and token limits per minute (`rpm_limit`, `tpm_limit`), counted in Redis so that every API
 * replica agrees. A request reserves its prompt plus `max_new_tokens` up front; the difference is handed back
 * when it ends. Over a limit, the answer is 429 with `Retry-After`.
 */
import { Injectable } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import type { Principal } from '../auth/api-keys.service';
import { RedisService } from '../redis/redis.service';

export interface Reservation {
  /** Gives back the reserved tokens that were not used. */
  settle(usedTokens: number): void;
}

const NOTHING: Reservation = { settle: () => undefined };
const WINDOW_MS = 60_000;

@Injectable()
export class RateLimiter {
  constructor(private readonly redis: RedisService) {}

  async reserve(principal: Principal, tokens: number): Promise<Reservation> {
    const { keyId, rpmLimit, tpmLimit } = principal;
    if (!keyId || (rpmLimit === null && tpmLimit === null)) return NOTHING;
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    const base = `${this.redis.names.prefix}rl:${keyId}:${window}`;
    const requestsKey = `${base}:r`;
    const tokensKey = `${base}:t`;
    const results = await this.redis.redis
      .multi()
      .incr(requestsKey)
      .pexpire(requestsKey, WINDOW_MS * 2)
      .incrby(tokensKey, tokens)
      .pexpire(tokensKey, WINDOW_MS * 2)
      .exec();
    const requests = Number(results?.[0]?.[1] ?? 0);
    const used = Number(results?.[2]?.[1] ?? 0);
    const retryAfter = String(Math.max(1, Math.ceil(((window + 1) * WINDOW_MS - now) / 1000)));
    const over =
      rpmLimit !== null && requests > rpmLimit
        ? `the key's limit of ${rpmLimit} requests per minute`
        : tpmLimit !== null && used > tpmLimit
          ? `the key's limit of ${tpmLimit} tokens per minute (this request counts ${tokens}: prompt + max_new_tokens)`
          : null;
    if (over) {
      // a refused request takes nothing
      await this.redis.redis.multi().decr(requestsKey).decrby(tokensKey, tokens).exec();
      throw new ApiError(429, 'rate_limited', `rate limit exceeded: ${over}`, { 'retry-after': retryAfter });
    }
    return {
      settle: (usedTokens) => {
        const unused = tokens - usedTokens;
        if (unused > 0) void this.redis.redis.decrby(tokensKey, unused).catch(() => undefined);
      },
    };
  }
}
