/** Redis connections from one URL: ioredis clients for commands and pub/sub, and BullMQ's connection options. */
import { Redis, RedisOptions } from 'ioredis';

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
  };
}

export function createRedis(url: string, name: string): Redis {
  return new Redis({ ...redisOptions(url), connectionName: name, lazyConnect: false });
}
