/**
 * Where the live workers are found. Each worker rewrites `worker:<id>` (its heartbeat) and `metrics:<id>` with a TTL
 * every interval, and keeps its id in the sorted set `workers`, scored with the time its keys expire. Readers take
 * the ids from the set and the values with one MGET: a key that expired is a dead worker, whatever the set says.
 * So finding the workers costs two commands whatever else the Redis holds (a SCAN for `worker:*` walks the whole
 * keyspace), and a member whose worker died is dropped by the next heartbeat of any worker once its score is
 * `INDEX_GRACE_MS` old: the set stays the size of the fleet, and a clock that is off by less than that loses no one.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import { parseJson } from './parse';
import { heartbeatSchema, type Heartbeat, type RedisNames } from './protocol';

/** How long after its keys expired a dead worker's id stays in the set. */
export const INDEX_GRACE_MS = 60_000;

/** Queues a worker's heartbeat and metrics snapshot, and its place in the set, on a MULTI or pipeline. */
export function writeWorkerEntries(
  tx: ChainableCommander,
  names: RedisNames,
  workerId: string,
  entries: { heartbeat: string; metrics: string },
  ttlMs: number,
  now = Date.now(),
): ChainableCommander {
  return tx
    .set(names.worker(workerId), entries.heartbeat, 'PX', ttlMs)
    .set(names.metrics(workerId), entries.metrics, 'PX', ttlMs)
    .zadd(names.workers, now + ttlMs, workerId)
    .zremrangebyscore(names.workers, '-inf', now - INDEX_GRACE_MS);
}

/** A worker leaving: its keys and its id go. */
export async function removeWorkerEntries(
  redis: Pick<Redis, 'multi'>,
  names: RedisNames,
  workerId: string,
): Promise<void> {
  await redis.multi().del(names.worker(workerId), names.metrics(workerId)).zrem(names.workers, workerId).exec();
}

/**
 * The live workers' values under `key` (`names.worker` or `names.metrics`), as [worker id, value] sorted by id;
 * workers whose key has expired are left out.
 */
export async function readWorkerEntries(
  redis: Pick<Redis, 'zrange' | 'mget'>,
  names: RedisNames,
  key: (workerId: string) => string,
): Promise<[string, string][]> {
  const ids = (await redis.zrange(names.workers, 0, -1)).sort();
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map(key));
  const out: [string, string][] = [];
  for (let i = 0; i < ids.length; i++) {
    const value = values[i];
    if (value !== null) out.push([ids[i], value]);
  }
  return out;
}

/**
 * A heartbeat as read from Redis, or null for a value that is not one (half-written, foreign, or from a version
 * that wrote another shape): the one parser every reader uses, so a bad value never reaches placement or routing.
 */
export function parseHeartbeat(raw: string): Heartbeat | null {
  return parseJson(heartbeatSchema, raw);
}
