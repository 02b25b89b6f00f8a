/**
 * The worker's configuration: read once at boot from flags and SWITCHYARD_* variables (the table in flags.ts),
 * validated, typed. A bad value stops start-up with a message that names the flag. Workers need Redis only: no
 * database.
 */
import type { SchedulerConfig } from '@switchyard/batching';
import type { ModelSpec } from '@switchyard/protocol';
import type { DtypeChoice, Quantize } from '@switchyard/models';
import { readFlags, usageOf } from './flag-table';
import { FLAGS } from './flags';

export interface WorkerConfig {
  redisUrl: string;
  redisPrefix: string;
  workerId: string;
  /** The device-memory budget of the model pool, in bytes. */
  deviceMemory: number;
  /** The parked tier's budget, in bytes; 0 turns parking off. */
  hostMemory: number;
  /** Quantization at load for models whose spec does not say (`ModelSpec.quantization` null). */
  quantize: Quantize;
  /** Which of a model directory's graph files to serve (`auto`: the most precise present). */
  dtype: DtypeChoice;
  /** Weights per quantization block; null for the default of each kind (q8 128, q4 32). */
  quantizeBlockSize: number | null;
  /** Where prepared graphs (quantized weights, rewrite checks) are kept between loads. */
  cacheDir: string;
  /** Idle time before a model unloads, in milliseconds; -1 means never. */
  keepAliveMs: number;
  executionProvider: 'cpu' | 'cuda';
  intraOpThreads: number;
  /** Rewrite each model's attention to read a cache the worker owns (libs/models/src/onnx); off serves exports as they are. */
  fuseAttention: boolean;
  /** ONNX Runtime threads spin between parallel sections (off by default: the worker shares the cores). */
  intraOpSpin: boolean | 'auto';
  /** With `intraOpSpin`: how long they spin before sleeping, in microseconds; null is ONNX Runtime's own. */
  intraOpSpinUs: number | null;
  scheduler: SchedulerConfig;
  /** Models to load at start, and models to load and never evict. */
  preload: ModelSpec[];
  /** How long SIGTERM waits for running requests before it gives up on them (they run again elsewhere). */
  drainTimeoutMs: number;
  /** BullMQ's lock on a running job; a worker that dies loses it after this long and the job runs again. */
  lockDurationMs: number;
  /** How long a load that does not fit waits for a model to go idle. */
  placeTimeoutMs: number;
  /** A model whose oldest queued job waits longer than this gets a replica on another worker. */
  replicaQueueWaitMs: number;
  heartbeatIntervalMs: number;
}

export const WORKER_CONFIG = Symbol('WORKER_CONFIG');

export const WORKER_USAGE = usageOf(
  FLAGS,
  'worker',
  'Usage: npm run worker -- [flags]   (node dist/apps/gpu-worker/src/main.js)',
);

export function readWorkerConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): WorkerConfig {
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
function intraOpSpin(spin: boolean | 'auto' | number): Pick<WorkerConfig, 'intraOpSpin' | 'intraOpSpinUs'> {
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
