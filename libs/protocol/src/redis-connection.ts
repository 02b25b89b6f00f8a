/** Redis connections from one URL: ioredis clients for commands and pub/sub, and BullMQ's connection options. */
import { Redis, RedisOptions } from 'ioredis';

/** Reconnection attempts back off to at most this, so service resumes within about a second of Redis returning. */
const MAX_RECONNECT_DELAY_MS = 1000;

export function redisOptions(url: string): RedisOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    // BullMQ's workers need this; blocking commands must not fail after a few retries.
    maxRetriesPerRequest: null,
    retryStrategy: (attempts) => Math.min(attempts * 100, MAX_RECONNECT_DELAY_MS),
  };
}

/**
 * Options for a connection whose commands a request waits on: while Redis is unreachable they fail (after one
 * reconnection attempt, or `timeoutMs`) instead of queueing until it returns, so the request gets a 503 at once.
 * Not for blocking reads.
 */
export function failFastOptions(url: string, timeoutMs = 2000): RedisOptions {
  return { ...redisOptions(url), maxRetriesPerRequest: 1, commandTimeout: timeoutMs };
}

export function createRedis(url: string, name: string, options: RedisOptions = redisOptions(url)): Redis {
  return new Redis({ ...options, connectionName: name, lazyConnect: false });
}
