/**
 * Crash recovery in about a second rather than a lock period. A worker that dies (killed, out of memory, its host
 * gone) leaves its running jobs active in BullMQ, locked for `--lock-duration` (30 s), and its requests wait that
 * long before another worker runs them. Every live worker therefore looks, with each heartbeat, for workers in the
 * index whose heartbeat has lapsed, or that came back under the same id as a new process (the launcher restarts a
 * worker that dies); for each model it serves, it releases the jobs such a worker had taken (BullMQ records the
 * taker's name, `<worker id>/<incarnation>`, on the job as `pb`): their locks are dropped and they are marked as
 * stalled, so BullMQ's own stalled-job check, which runs every second on the consumers of that queue, moves them
 * back to wait at its next run, counting the stall as it always does. The job then runs again as its next attempt:
 * a JSON request is answered as if nothing happened; a stream that had sent tokens ends with an error event.
 */
import type { Redis } from 'ioredis';
import { QueueKeys } from 'bullmq';
import { parseHeartbeat, type RedisNames } from '@switchyard/protocol';

/**
 * KEYS: active list, stalled set, stalled-check key. ARGV: the job key prefix, then pairs of a worker id and the
 * incarnation still alive under it ('' when none is: the worker is dead). A job taken by `<id>/<incarnation>` is
 * released when its worker is dead or runs under another incarnation now. Returns the ids of the jobs released.
 */
const RELEASE_SCRIPT = `
local alive = {}
for i = 2, #ARGV, 2 do alive[ARGV[i]] = ARGV[i + 1] end
local released = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local jobKey = ARGV[1] .. id
  local takenBy = redis.call('HGET', jobKey, 'pb')
  if takenBy then
    local worker, incarnation = string.match(takenBy, '^(.*)/([^/]*)$')
    local now = worker and alive[worker]
    if now and now ~= incarnation then
      redis.call('DEL', jobKey .. ':lock')
      redis.call('SADD', KEYS[2], id)
      table.insert(released, id)
    end
  end
end
if #released > 0 then redis.call('DEL', KEYS[3]) end
return released
`;

/** How long a worker's end is remembered as handled (a dead id leaves the index within a minute). */
const FORGET_MS = 120_000;

export class OrphanRecovery {
  private readonly keys: QueueKeys;
  /** The incarnation last seen alive under each worker id. */
  private readonly seen = new Map<string, string>();
  /** Ends already handled, per model (`model, worker id, the incarnation that ended`), and when. */
  private readonly done = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly names: RedisNames,
    private readonly selfId: string,
  ) {
    this.keys = new QueueKeys(names.generatePrefix);
  }

  /**
   * Worker ids whose incarnation ended: in the index with no heartbeat (dead, ''), or alive under another
   * incarnation than last seen (restarted: the one now alive).
   */
  async ended(): Promise<Map<string, string>> {
    const ids = (await this.redis.zrange(this.names.workers, 0, -1)).filter((id) => id !== this.selfId);
    const out = new Map<string, string>();
    if (ids.length === 0) return out;
    const beats = await this.redis.mget(ids.map((id) => this.names.worker(id)));
    ids.forEach((id, i) => {
      const raw = beats[i];
      if (raw === null) {
        out.set(id, '');
        return;
      }
      const incarnation = parseHeartbeat(raw)?.incarnation;
      if (!incarnation) return;
      const before = this.seen.get(id);
      this.seen.set(id, incarnation);
      if (before !== undefined && before !== incarnation) out.set(id, incarnation);
    });
    return out;
  }

  /**
   * Releases the jobs that ended incarnations had taken from these models' queues, once per end and model;
   * returns the released jobs as `model/jobId`.
   */
  async recover(models: string[], now = Date.now()): Promise<string[]> {
    for (const [key, at] of this.done) if (now - at > FORGET_MS) this.done.delete(key);
    const ended = await this.ended();
    if (ended.size === 0 || models.length === 0) return [];
    const released: string[] = [];
    for (const model of models) {
      const fresh = [...ended].filter(([id, alive]) => !this.done.has(`${model}\0${id}\0${alive}`));
      if (fresh.length === 0) continue;
      const keys = this.keys.getKeys(model);
      const ids = (await this.redis.eval(
        RELEASE_SCRIPT,
        3,
        keys.active,
        keys.stalled,
        keys['stalled-check'],
        keys[''],
        ...fresh.flat(),
      )) as string[];
      for (const [id, alive] of fresh) this.done.set(`${model}\0${id}\0${alive}`, now);
      for (const id of ids) released.push(`${model}/${id}`);
    }
    return released;
  }
}
