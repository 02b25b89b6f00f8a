/**
 * The worker's configuration: read once at boot from flags and SWITCHYARD_* variables (the table in flags.ts),
 * validated, typed. A bad value stops start-up with a message that names the flag. Workers need Redis only: no
 * database.
 */
import type { ModelSpec } from '@switchyard/protocol';
import { readFlags, usageOf } from './flag-table';
import { FLAGS } from './flags';

/** A worker's typed configuration: what `readWorkerConfig` returns (each field's meaning is its flag's). */
export type WorkerConfig = ReturnType<typeof readWorkerConfig>;

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');

export const WORKER_USAGE = usageOf(
  FLAGS,
  'worker',
  'Usage: npm run worker -- [flags]   (node dist/apps/gpu-worker/src/main.js)',
);

export function readWorkerConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()) {
  const flags = readFlags(FLAGS, 'worker', WORKER_USAGE, argv, env, cwd);
  // each flag is parsed, and refused, when it is read: this order decides which of two bad flags is named
  return {
    redisUrl: flags.get('redis-url'),
    redisPrefix: flags.get('redis-prefix'),
    workerId: flags.get('worker-id'),
    deviceMemory: flags.get('device-memory'),
    hostMemory: flags.get('host-memory'),
    quantize: flags.get('quantize'),
    dtype: flags.get('dtype'),
    quantizeBlockSize: flags.get('quantize-block-size'),
    keepAliveMs: flags.get('keep-alive'),
    executionProvider: flags.get('execution-provider'),
    fuseAttention: flags.get('attention') === 'rewrite',
    ...intraOpSpin(flags.get('intra-op-spin')),
    scheduler: {
      maxBatchTotalTokens: flags.get('max-batch-total-tokens'),
      maxBatchPrefillTokens: flags.get('max-batch-prefill-tokens'),
      maxBatchSize: flags.get('max-batch-size'),
      waitingServedRatio: flags.get('waiting-served-ratio'),
      maxWaitingTokens: flags.get('max-waiting-tokens'),
    },
    preload: preloadSpecs([...flags.get('preload'), ...flags.get('pin')]),
    cacheDir: flags.get('cache-dir'),
    intraOpThreads: flags.get('intra-op-threads'),
    drainTimeoutMs: flags.get('drain-timeout'),
    lockDurationMs: flags.get('lock-duration'),
    placeTimeoutMs: flags.get('place-timeout'),
    replicaQueueWaitMs: flags.get('replica-queue-wait'),
    heartbeatIntervalMs: flags.get('heartbeat-interval'),
  };
}

/** `--intra-op-spin`: auto, on, off, or on for a time in microseconds. */
function intraOpSpin(spin: boolean | 'auto' | number): { intraOpSpin: boolean | 'auto'; intraOpSpinUs: number | null } {
  return {
    intraOpSpin: spin === 'auto' ? 'auto' : spin !== false,
    intraOpSpinUs: typeof spin === 'number' ? spin : null,
  };
}

/** `--preload` then `--pin`, one spec a model: a model both preloaded and pinned is pinned. */
function preloadSpecs(listed: ModelSpec[]): ModelSpec[] {
  const specs = new Map<string, ModelSpec>();
  for (const spec of listed) {
    specs.set(spec.id, { ...spec, pinned: spec.pinned || (specs.get(spec.id)?.pinned ?? false) });
  }
  return [...specs.values()];
}
