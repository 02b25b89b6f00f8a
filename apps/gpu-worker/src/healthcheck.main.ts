/**
 * A worker's health check, for a container or a pod: the worker has no HTTP port, so this asks Redis whether its
 * heartbeat (`worker:<id>`, rewritten every --heartbeat-interval with a TTL) is there. Takes the worker's own flags
 * and variables; the worker's id must be given (`--worker-id` or SWITCHYARD_WORKER_ID), since the default one holds
 * the worker's process id. Exits 0 when the heartbeat is live, 1 otherwise, saying why.
 */
import { readWorkerConfig } from '@switchyard/config';
import { createRedis, failFastOptions, RedisNames } from '@switchyard/protocol';

async function check(): Promise<string> {
  const argv = process.argv.slice(2);
  if (!process.env.SWITCHYARD_WORKER_ID && !argv.some((a) => a.startsWith('--worker-id'))) {
    throw new Error("give the worker's id (--worker-id or SWITCHYARD_WORKER_ID): the default one holds its pid");
  }
  const config = readWorkerConfig(argv, process.env);
  const redis = createRedis(config.redisUrl, 'switchyard-healthcheck', failFastOptions(config.redisUrl, 2000));
  redis.on('error', () => undefined); // the command's own rejection says it
  try {
    const key = new RedisNames(config.redisPrefix).worker(config.workerId);
    if ((await redis.exists(key)) === 0) throw new Error(`no live heartbeat at ${key}`);
    return `worker ${config.workerId} is live`;
  } finally {
    redis.disconnect();
  }
}

check().then(
  (line) => {
    console.log(line);
    process.exit(0);
  },
  (err: unknown) => {
    console.error(`switchyard worker healthcheck: ${(err as Error).message}`);
    process.exit(1);
  },
);
