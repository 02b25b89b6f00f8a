/**
 * The worker's configuration: read once at boot from flags and SWITCHYARD_* variables, validated, typed.
 * A bad value stops start-up with a message that names the flag. Workers need Redis only: no database.
 */
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_SCHEDULER_CONFIG, SchedulerConfig } from '@switchyard/batching';
import { isValidId, ModelSpec } from '@switchyard/protocol';
import {
  availableMemoryBytes,
  defaultCacheDir,
  DtypeChoice,
  GRAPH_DTYPES,
  parseBytes,
  parseQuantize,
  Quantize,
} from '@switchyard/models';

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

export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface FlagSpec {
  env: string;
  default: string;
  multiple?: boolean;
}

export const WORKER_FLAGS: Record<string, FlagSpec> = {
  'redis-url': { env: 'SWITCHYARD_REDIS_URL', default: 'redis://127.0.0.1:6379' },
  'redis-prefix': { env: 'SWITCHYARD_REDIS_PREFIX', default: 'sy:' },
  'worker-id': { env: 'SWITCHYARD_WORKER_ID', default: '' },
  'device-memory': { env: 'SWITCHYARD_DEVICE_MEMORY', default: 'auto' },
  'host-memory': { env: 'SWITCHYARD_HOST_MEMORY', default: 'auto' },
  quantize: { env: 'SWITCHYARD_QUANTIZE', default: 'none' },
  dtype: { env: 'SWITCHYARD_DTYPE', default: 'auto' },
  'quantize-block-size': { env: 'SWITCHYARD_QUANTIZE_BLOCK_SIZE', default: '' },
  'cache-dir': { env: 'SWITCHYARD_CACHE_DIR', default: '' },
  'keep-alive': { env: 'SWITCHYARD_KEEP_ALIVE', default: '5m' },
  'execution-provider': { env: 'SWITCHYARD_EXECUTION_PROVIDER', default: 'cpu' },
  'intra-op-threads': { env: 'SWITCHYARD_INTRA_OP_THREADS', default: '0' },
  attention: { env: 'SWITCHYARD_ATTENTION', default: 'rewrite' },
  'intra-op-spin': { env: 'SWITCHYARD_INTRA_OP_SPIN', default: 'auto' },
  'max-batch-total-tokens': {
    env: 'SWITCHYARD_MAX_BATCH_TOTAL_TOKENS',
    default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens),
  },
  'max-batch-prefill-tokens': {
    env: 'SWITCHYARD_MAX_BATCH_PREFILL_TOKENS',
    default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens),
  },
  'max-batch-size': { env: 'SWITCHYARD_MAX_BATCH_SIZE', default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchSize) },
  'waiting-served-ratio': {
    env: 'SWITCHYARD_WAITING_SERVED_RATIO',
    default: String(DEFAULT_SCHEDULER_CONFIG.waitingServedRatio),
  },
  'max-waiting-tokens': {
    env: 'SWITCHYARD_MAX_WAITING_TOKENS',
    default: String(DEFAULT_SCHEDULER_CONFIG.maxWaitingTokens),
  },
  preload: { env: 'SWITCHYARD_PRELOAD', default: '', multiple: true },
  pin: { env: 'SWITCHYARD_PIN', default: '', multiple: true },
  'drain-timeout': { env: 'SWITCHYARD_DRAIN_TIMEOUT', default: '30s' },
  'lock-duration': { env: 'SWITCHYARD_LOCK_DURATION', default: '30s' },
  'place-timeout': { env: 'SWITCHYARD_PLACE_TIMEOUT', default: '10s' },
  'replica-queue-wait': { env: 'SWITCHYARD_REPLICA_QUEUE_WAIT', default: '5s' },
  'heartbeat-interval': { env: 'SWITCHYARD_HEARTBEAT_INTERVAL', default: '1s' },
};

/**
 * The shares of the host's available memory that `--device-memory auto` and `--host-memory auto` give a CPU worker.
 * On a CPU both tiers live in the same RAM: resident models (weights, KV reservation, working memory) and parked
 * ones (their weights and sessions) split it.
 */
export const AUTO_MEMORY_SHARE = 0.6;
export const AUTO_HOST_SHARE = 0.2;
/** `--device-memory auto` with CUDA: the device's memory is not known to this process. */
const AUTO_CUDA_MEMORY = '8GiB';
/** `--host-memory auto` with CUDA: parked models' weights live in host memory, beside nothing else of ours. */
const AUTO_CUDA_HOST_SHARE = 0.5;

/** `--device-memory auto` for a CPU worker: its share of the host's available memory now. */
export function autoDeviceMemory(workers = 1): number {
  return Math.floor((availableMemoryBytes() * AUTO_MEMORY_SHARE) / Math.max(1, workers));
}

/** `--host-memory auto`: the parked tier's share of the host's available memory now. */
export function autoHostMemory(workers = 1, executionProvider = 'cpu'): number {
  const share = executionProvider === 'cuda' ? AUTO_CUDA_HOST_SHARE : AUTO_HOST_SHARE;
  return Math.floor((availableMemoryBytes() * share) / Math.max(1, workers));
}

export const WORKER_USAGE = `Usage: switchyard-worker [flags]

Flags (each also read from the SWITCHYARD_* variable named in brackets):
${Object.entries(WORKER_FLAGS)
  .map(([name, spec]) => `  --${name.padEnd(26)} [${spec.env}] default: ${spec.default || '(none)'}`)
  .join('\n')}

--preload and --pin take a model directory, optionally as ID=DIR, and may be repeated (or comma-separated in the
variable). Durations take ms, s, m or h (e.g. 500ms, 30s, 5m); --keep-alive=-1 or never keeps idle models. Sizes take a byte
count or KiB, MiB, GiB; --device-memory auto is ${AUTO_MEMORY_SHARE * 100} % of the host's available memory on a CPU (the
launcher divides it among its workers), and ${AUTO_CUDA_MEMORY} with --execution-provider cuda; --host-memory auto, the
parked tier's budget, is ${AUTO_HOST_SHARE * 100} % (${AUTO_CUDA_HOST_SHARE * 100} % with CUDA), and 0 turns parking off. --quantize none, q8 or q4
quantizes each model's MatMuls at load (once: the result is kept in --cache-dir, default ${defaultCacheDir()});
--dtype auto, ${GRAPH_DTYPES.join(', ')} picks the graph file of that precision in a model directory.`;

/**
 * `--intra-op-spin`: auto (per model, see `spinsFor`), false (sleep at once), true (ONNX Runtime's own spin), or how
 * long to spin before sleeping ("50us", "1ms") in whole microseconds; undefined for anything else.
 */
export function parseSpin(raw: string): boolean | number | 'auto' | undefined {
  if (raw === 'auto') return 'auto';
  if (raw === 'true' || raw === 'false') return raw === 'true';
  const m = /^(\d+(?:\.\d+)?)(us|ms)$/.exec(raw.trim());
  if (!m) return undefined;
  const us = Math.round(Number(m[1]) * (m[2] === 'ms' ? 1000 : 1));
  return us >= 1 && us <= 1_000_000 ? us : undefined;
}

/**
 * With `--intra-op-spin auto`, a model's threads spin when its weights are at least this large. A step of such a
 * model takes long enough that the API's and Redis's work between steps is small beside it, and waking sleeping
 * threads at each of a step's parallel sections costs more than spinning takes from them: the 500M-parameter
 * model ran 1.19 times faster through the platform at 1 client and 1.04 times at 32 with spinning (q4 and q8). On
 * demo-small (47 MB) spinning cost the platform about a tenth of its throughput at 64 clients.
 */
export const SPIN_FROM_WEIGHT_BYTES = 128 * 2 ** 20;

/** Whether a model's ONNX Runtime threads spin, for `--intra-op-spin` and the model's resident weights. */
export function spinsFor(setting: boolean | 'auto', weightBytes: number): boolean {
  return setting === 'auto' ? weightBytes >= SPIN_FROM_WEIGHT_BYTES : setting;
}

/** Parses a duration to milliseconds: "500ms", "30s", "5m", "1h", or a bare number of seconds. */
export function parseDuration(raw: string): number | null {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) return null;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * scale);
}

export function readWorkerConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): WorkerConfig {
  let values: Record<string, string | string[] | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(
        Object.entries(WORKER_FLAGS).map(([k, spec]) => [
          k,
          { type: 'string' as const, multiple: spec.multiple ?? false },
        ]),
      ),
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${WORKER_USAGE}`);
  }
  const flag = (name: string): string => {
    const value = values[name];
    if (typeof value === 'string') return value;
    return env[WORKER_FLAGS[name].env] ?? WORKER_FLAGS[name].default;
  };
  const list = (name: string): string[] => {
    const value = values[name];
    const raw = Array.isArray(value) ? value : (env[WORKER_FLAGS[name].env] ?? '').split(',');
    return raw.map((s) => s.trim()).filter(Boolean);
  };
  const duration = (name: string, min: number): number => {
    const ms = parseDuration(flag(name));
    if (ms === null || ms < min)
      throw new ConfigError(`--${name} must be a duration like 30s or 5m, got "${flag(name)}"`);
    return ms;
  };
  const integer = (name: string, min: number): number => {
    const raw = flag(name);
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min) throw new ConfigError(`--${name} must be an integer >= ${min}, got "${raw}"`);
    return n;
  };

  const redisUrl = flag('redis-url');
  if (!/^rediss?:\/\//.test(redisUrl)) throw new ConfigError(`--redis-url must be a redis:// URL, got "${redisUrl}"`);
  const redisPrefix = flag('redis-prefix');
  if (!/^[A-Za-z0-9_.-]*:$/.test(redisPrefix)) {
    throw new ConfigError(`--redis-prefix must be letters, digits, . _ - and end with ':', got "${redisPrefix}"`);
  }
  const workerId = flag('worker-id') || `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}`;
  if (!isValidId(workerId))
    throw new ConfigError(`--worker-id must be 1-128 letters, digits or . _ -, got "${workerId}"`);
  const executionProviderRaw = flag('execution-provider');
  const deviceMemoryRaw = flag('device-memory');
  const deviceMemory =
    deviceMemoryRaw === 'auto'
      ? executionProviderRaw === 'cuda'
        ? parseBytes(AUTO_CUDA_MEMORY)
        : autoDeviceMemory()
      : parseBytes(deviceMemoryRaw);
  if (deviceMemory === null) {
    throw new ConfigError(`--device-memory must be a size like 2GiB or 512MiB, or auto, got "${deviceMemoryRaw}"`);
  }
  const hostMemoryRaw = flag('host-memory');
  const hostMemory =
    hostMemoryRaw === 'auto'
      ? autoHostMemory(1, executionProviderRaw)
      : hostMemoryRaw.trim() === '0'
        ? 0
        : parseBytes(hostMemoryRaw);
  if (hostMemory === null) {
    throw new ConfigError(`--host-memory must be a size like 2GiB or 512MiB, 0 or auto, got "${hostMemoryRaw}"`);
  }
  let quantize: Quantize;
  try {
    quantize = parseQuantize(flag('quantize'));
  } catch (err) {
    throw new ConfigError(`--quantize ${(err as Error).message}`);
  }
  const dtype = flag('dtype');
  if (dtype !== 'auto' && !(GRAPH_DTYPES as readonly string[]).includes(dtype)) {
    throw new ConfigError(`--dtype must be auto, ${GRAPH_DTYPES.join(', ')}; got "${dtype}"`);
  }
  const blockRaw = flag('quantize-block-size');
  const block = Number(blockRaw);
  if (blockRaw !== '' && (!/^\d+$/.test(blockRaw) || block < 16 || block > 256 || (block & (block - 1)) !== 0)) {
    throw new ConfigError(`--quantize-block-size must be 16, 32, 64, 128 or 256, got "${blockRaw}"`);
  }
  const keepAliveRaw = flag('keep-alive') === 'never' ? -1 : parseDuration(flag('keep-alive'));
  if (keepAliveRaw === null || (keepAliveRaw < 0 && keepAliveRaw !== -1000 && keepAliveRaw !== -1)) {
    throw new ConfigError(`--keep-alive must be a duration like 5m, or never (-1), got "${flag('keep-alive')}"`);
  }
  const executionProvider = flag('execution-provider');
  if (executionProvider !== 'cpu' && executionProvider !== 'cuda') {
    throw new ConfigError(`--execution-provider must be cpu or cuda, got "${executionProvider}"`);
  }
  const attention = flag('attention');
  if (attention !== 'rewrite' && attention !== 'export') {
    throw new ConfigError(`--attention must be rewrite or export, got "${attention}"`);
  }
  const spin = flag('intra-op-spin');
  const spinUs = parseSpin(spin);
  if (spinUs === undefined) {
    throw new ConfigError(`--intra-op-spin must be auto, true, false or a time like 50us or 1ms, got "${spin}"`);
  }
  const ratio = Number(flag('waiting-served-ratio'));
  if (!Number.isFinite(ratio) || ratio < 0) {
    throw new ConfigError(`--waiting-served-ratio must be a number >= 0, got "${flag('waiting-served-ratio')}"`);
  }
  const scheduler: SchedulerConfig = {
    maxBatchTotalTokens: integer('max-batch-total-tokens', 1),
    maxBatchPrefillTokens: integer('max-batch-prefill-tokens', 1),
    maxBatchSize: integer('max-batch-size', 1),
    waitingServedRatio: ratio,
    maxWaitingTokens: integer('max-waiting-tokens', 0),
  };
  const specs = new Map<string, ModelSpec>();
  for (const [name, pinned] of [
    ['preload', false],
    ['pin', true],
  ] as const) {
    for (const item of list(name)) {
      const spec = modelSpecFromArg(item, pinned, cwd, name);
      specs.set(spec.id, { ...spec, pinned: pinned || (specs.get(spec.id)?.pinned ?? false) });
    }
  }
  return {
    redisUrl,
    redisPrefix,
    workerId,
    deviceMemory,
    hostMemory,
    quantize,
    dtype: dtype as DtypeChoice,
    quantizeBlockSize: blockRaw === '' ? null : block,
    cacheDir: flag('cache-dir') === '' ? defaultCacheDir(env) : resolve(cwd, flag('cache-dir')),
    keepAliveMs: keepAliveRaw < 0 ? -1 : keepAliveRaw,
    executionProvider,
    intraOpThreads: integer('intra-op-threads', 0),
    fuseAttention: attention === 'rewrite',
    intraOpSpin: spinUs === 'auto' ? 'auto' : spinUs !== false,
    intraOpSpinUs: typeof spinUs === 'number' ? spinUs : null,
    scheduler,
    preload: [...specs.values()],
    drainTimeoutMs: duration('drain-timeout', 0),
    lockDurationMs: duration('lock-duration', 1000),
    placeTimeoutMs: duration('place-timeout', 0),
    replicaQueueWaitMs: duration('replica-queue-wait', 100),
    heartbeatIntervalMs: duration('heartbeat-interval', 100),
  };
}

/** `DIR` or `ID=DIR` → a spec with the model's own limits. */
export function modelSpecFromArg(arg: string, pinned: boolean, cwd: string, flagName: string): ModelSpec {
  const eq = arg.indexOf('=');
  const dir = resolve(cwd, eq >= 0 ? arg.slice(eq + 1) : arg);
  const id = eq >= 0 ? arg.slice(0, eq) : basename(dir);
  if (!isValidId(id))
    throw new ConfigError(`--${flagName} "${arg}": the model id "${id}" must be letters, digits or . _ -`);
  return { id, path: dir, pinned, maxInputTokens: null, maxTotalTokens: null, quantization: null };
}
