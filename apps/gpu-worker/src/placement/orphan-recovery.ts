/**
 * Crash recovery in about a second rather than a lock period. A worker that dies (killed, out of memory, its host
 * gone) leaves its running jobs active in BullMQ, locked for `--lock-duration` (30 s), and its requests wait that
 * long before another worker runs them. Every live worker therefore looks, with each heartbeat, for workers in the
 * index whose heartbeat has lapsed; for each model it serves, it releases the jobs such a worker had taken (BullMQ
 * records the taker's name, our worker id, on the job as `pb`): their locks are dropped and they are marked as
 * stalled, so BullMQ's own stalled-job check, which runs every second on the consumers of that queue, moves them
 * back to wait at its next run, counting the stall as it always does. The job then runs again as its next attempt:
 * a JSON request is answered as if nothing happened; a stream that had sent tokens ends with an error event.
 */
import type { Redis } from 'ioredis';
import { QueueKeys } from 'bullmq';
import type { RedisNames } from '@switchyard/batching';

/**
 * KEYS: active list, stalled set, stalled-check key. ARGV: the job key prefix, then the dead workers' ids.
 * Returns the ids of the jobs released.
 */
const RELEASE_SCRIPT = `
local dead = {}
for i = 2, #ARGV do dead[ARGV[i]] = true end
local released = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local jobKey = ARGV[1] .. id
  local takenBy = redis.call('HGET', jobKey, 'pb')
  if takenBy and dead[takenBy] then
    redis.call('DEL', jobKey .. ':lock')
    redis.call('SADD', KEYS[2], id)
    table.insert(released, id)
  end
end
if #released > 0 then redis.call('DEL', KEYS[3]) end
return released
`;

/** How long a dead worker is remembered as recovered (its id leaves the index within a minute). */
const FORGET_MS = 120_000;

export class OrphanRecovery {
  private readonly keys: QueueKeys;
  /** Dead workers already handled, per model, and when. */
  private readonly done = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly names: RedisNames,
    private readonly selfId: string,
  ) {
    this.keys = new QueueKeys(names.generatePrefix);
  }

  /** Workers in the index whose heartbeat has lapsed. */
  async deadWorkers(): Promise<string[]> {
    const ids = (await this.redis.zrange(this.names.workers, 0, -1)).filter((id) => id !== this.selfId);
    if (ids.length === 0) return [];
    const beats = await this.redis.mget(ids.map((id) => this.names.worker(id)));
    return ids.filter((_, i) => beats[i] === null);
  }

  /**
   * Releases the jobs the dead workers had taken from these models' queues, once per dead worker and model;
   * returns the released jobs as `model/jobId`.
   */
  async recover(models: string[], now = Date.now()): Promise<string[]> {
    for (const [key, at] of this.done) if (now - at > FORGET_MS) this.done.delete(key);
    const dead = await this.deadWorkers();
    if (dead.length === 0 || models.length === 0) return [];
    const released: string[] = [];
    for (const model of models) {
      const fresh = dead.filter((id) => !this.done.has(`${model}\0${id}`));
      if (fresh.length === 0) continue;
      const keys = this.keys.getKeys(model);
      const ids = (await this.redis.eval(
        RELEASE_SCRIPT,
        3,
        keys.active,
        keys.stalled,
        keys['stalled-check'],
        keys[''],
        ...fresh,
      )) as string[];
      for (const id of fresh) this.done.set(`${model}\0${id}`, now);
      for (const id of ids) released.push(`${model}/${id}`);
    }
    return released;
  }
}
