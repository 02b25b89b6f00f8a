/**
 * Every flag of every Switchyard process, declared once: its variable, default, what --help says of it, which
 * processes take it, and its parser (the validation, and the typed value). api-config.ts and worker-config.ts
 * assemble their typed configs from it; flag-table.ts derives the reading and each process's --help.
 */
import { hostname } from 'node:os';
import { basename, resolve } from 'node:path';
import { DEFAULT_SCHEDULER_CONFIG, DEFAULT_VALIDATION_LIMITS } from '@switchyard/batching';
import { isValidId, parseDuration } from '@switchyard/protocol';
import { defaultCacheDir, DtypeChoice, GRAPH_DTYPES, parseBytes, parseQuantize, Quantize } from '@switchyard/models';
import { ConfigError } from './config-error';
import { Flag, FlagContext, ListFlag, ProcessName, ValueFlag } from './flag-table';
import {
  AUTO_CUDA_HOST_SHARE,
  AUTO_CUDA_MEMORY,
  AUTO_HOST_SHARE,
  AUTO_MEMORY_SHARE,
  autoDeviceMemory,
  autoHostMemory,
  modelSpecFromArg,
  parseSpin,
} from './flag-values';

const API: readonly ProcessName[] = ['launcher', 'api'];
const HANDED_ON: readonly ProcessName[] = ['launcher', 'api', 'worker'];
const WORKER: readonly ProcessName[] = ['worker'];

type Unscoped<F> = Omit<F, 'processes'>;
const value = <T>(f: Unscoped<ValueFlag<T>>) => f;
const list = <T>(f: Unscoped<Omit<ListFlag<T>, 'type'>>): Unscoped<ListFlag<T>> => ({ ...f, type: 'list' });

/** A section of the table: every flag in it is taken by `processes`. */
function scoped<S extends Record<string, Unscoped<Flag>>>(processes: readonly ProcessName[], section: S) {
  return Object.fromEntries(Object.entries(section).map(([name, f]) => [name, { ...f, processes }])) as {
    [K in keyof S]: S[K] & { processes: readonly ProcessName[] };
  };
}

function text(raw: string): string {
  return raw;
}

/** An integer >= min. */
function integer(min: number) {
  return (raw: string, { name }: FlagContext): number => {
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < min || !Number.isSafeInteger(n)) {
      throw new ConfigError(`--${name} must be an integer >= ${min}, got "${raw}"`);
    }
    return n;
  };
}

/** An integer >= 1, or '' for none (null). */
function optionalInteger(raw: string, ctx: FlagContext): number | null {
  return raw === '' ? null : integer(1)(raw, ctx);
}

/** A duration in milliseconds, at least `minMs`. */
function duration(minMs: number) {
  return (raw: string, { name }: FlagContext): number => {
    const ms = parseDuration(raw);
    if (ms === null || ms < minMs) throw new ConfigError(`--${name} must be a duration like 30s or 5m, got "${raw}"`);
    return ms;
  };
}

/** One of `choices`. */
function oneOf<C extends string>(...choices: C[]) {
  return (raw: string, { name }: FlagContext): C => {
    if (!(choices as string[]).includes(raw)) {
      throw new ConfigError(`--${name} must be ${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}, got "${raw}"`);
    }
    return raw as C;
  };
}

function bool(raw: string): boolean {
  return raw === 'true';
}

export function parsePort(flag: string, raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw new ConfigError(`--${flag} must be a port number from 1 to 65535, got "${raw}"`);
  }
  return port;
}

function redisUrl(raw: string): string {
  if (!/^rediss?:\/\//.test(raw)) throw new ConfigError(`--redis-url must be a redis:// URL, got "${raw}"`);
  return raw;
}

function quantize(raw: string): Quantize {
  try {
    return parseQuantize(raw);
  } catch (err) {
    throw new ConfigError(`--quantize ${(err as Error).message}`);
  }
}

/** The API's own flags (the launcher takes them too, and hands them to the API). */
const API_FLAGS = scoped(API, {
  hostname: value({
    default: '127.0.0.1',
    description: 'The interface the API listens on.',
    parse: text,
  }),
  port: value({
    default: '8080',
    description: 'The port the API listens on.',
    parse: (raw, { name }) => parsePort(name, raw),
  }),
  'model-id': value({
    default: 'models/demo-small',
    description: 'The default model: a model directory (an ONNX export with its config and tokenizer).',
    parse: (raw, { cwd }) => resolve(cwd, raw),
  }),
  'model-name': value({
    default: '',
    defaultHelp: "(the --model-id directory's name)",
    description: 'The id clients use for the default model: 1-128 letters, digits or . _ -.',
    parse: (raw, ctx) => {
      const name = raw || basename(resolve(ctx.cwd, ctx.raw('model-id')));
      if (!isValidId(name)) {
        throw new ConfigError(`--model-name "${name}" must be 1-128 letters, digits or . _ - (no spaces or colons)`);
      }
      return name;
    },
  }),
  'database-url': value({
    default: 'postgres://postgres@127.0.0.1:5432/switchyard',
    description: 'Postgres: the model registry, API keys and usage (the database is created at first start).',
    parse: (raw) => {
      if (!/^postgres(ql)?:\/\//.test(raw))
        throw new ConfigError(`--database-url must be a postgres:// URL, got "${raw}"`);
      return raw;
    },
  }),
  'max-concurrent-requests': value({
    default: '128',
    description: 'Requests in flight across all models before new ones are answered 429 at once.',
    parse: integer(1),
  }),
  'max-stop-sequences': value({
    default: String(DEFAULT_VALIDATION_LIMITS.maxStopSequences),
    description: 'The most stop sequences a request may give.',
    parse: integer(0),
  }),
  'max-best-of': value({
    default: String(DEFAULT_VALIDATION_LIMITS.maxBestOf),
    description: 'The largest best_of a request may ask for.',
    parse: integer(1),
  }),
  'max-top-n-tokens': value({
    default: String(DEFAULT_VALIDATION_LIMITS.maxTopNTokens),
    description: 'The largest top_n_tokens a request may ask for.',
    parse: integer(0),
  }),
  'max-input-tokens': value({
    default: '',
    defaultHelp: "(the model's positions - 1)",
    description: 'The most prompt tokens a request for the default model may have; less than --max-total-tokens.',
    aliases: ['max-input-length'],
    parse: optionalInteger,
  }),
  'max-total-tokens': value({
    default: '',
    defaultHelp: "(the model's positions)",
    description: 'The most prompt plus generated tokens of a request for the default model.',
    parse: optionalInteger,
  }),
  'payload-limit': value({
    default: '2000000',
    description: 'The largest request body, in bytes (413 past it).',
    parse: integer(1),
  }),
  'num-workers': value({
    default: '1',
    description: 'How many workers the launcher starts (each holds the default model, pinned).',
    parse: integer(0),
  }),
  'disable-auth': value({
    type: 'boolean',
    default: 'false',
    description:
      'Checks no API keys: every route, admin included, is open. Refused on a --hostname other than loopback.',
    parse: bool,
  }),
  'disable-auth-on-public-interface': value({
    type: 'boolean',
    default: 'false',
    description: 'Allows --disable-auth with a --hostname other than 127.0.0.1, ::1 or localhost.',
    parse: bool,
  }),
  'fallback-queue-wait': value({
    default: '10000',
    description:
      "A request falls back to its model's next fallback when the oldest queued job has waited this long (ms).",
    parse: integer(0),
  }),
  'cold-start-timeout': value({
    default: '0',
    description:
      'How long a request waits for a worker when none is live (workers scaled to zero): it is queued with a load ' +
      'command, and /health answers 200 degraded meanwhile. 0 answers 503 at once, and /health 503.',
    parse: duration(0),
  }),
});

/** Worker flags the launcher takes and hands to its workers (and so the API, given its argv, takes). */
const SHARED_FLAGS = scoped(HANDED_ON, {
  'redis-url': value({
    default: 'redis://127.0.0.1:6379',
    description: 'Redis: the queues, token streams and heartbeats between the API and the workers.',
    parse: redisUrl,
  }),
  'redis-prefix': value({
    default: 'sy:',
    description:
      "The prefix of every Redis key, so that deployments can share a Redis: letters, digits, . _ - and ':'.",
    parse: (raw) => {
      if (!/^[A-Za-z0-9_.-]*:$/.test(raw)) {
        throw new ConfigError(`--redis-prefix must be letters, digits, . _ - and end with ':', got "${raw}"`);
      }
      return raw;
    },
  }),
  'max-batch-prefill-tokens': value({
    default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens),
    description: 'The most prompt tokens prefilled in one step.',
    parse: integer(1),
  }),
  'max-batch-total-tokens': value({
    default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens),
    description:
      "A running batch's token budget: the padded batch with the tokens each row may still generate (its KV reservation).",
    parse: integer(1),
  }),
  'max-batch-size': value({
    default: String(DEFAULT_SCHEDULER_CONFIG.maxBatchSize),
    description: 'The most rows in a running batch.',
    parse: integer(1),
  }),
  'waiting-served-ratio': value({
    default: String(DEFAULT_SCHEDULER_CONFIG.waitingServedRatio),
    description: 'Waiting requests per running one at which the running batch pauses to prefill them (a number >= 0).',
    parse: (raw, { name }) => {
      const ratio = Number(raw);
      if (!Number.isFinite(ratio) || ratio < 0) throw new ConfigError(`--${name} must be a number >= 0, got "${raw}"`);
      return ratio;
    },
  }),
  'max-waiting-tokens': value({
    default: String(DEFAULT_SCHEDULER_CONFIG.maxWaitingTokens),
    description: 'Decode steps after which waiting requests are prefilled whatever the ratio.',
    parse: integer(0),
  }),
  quantize: value({
    default: 'none',
    description:
      "none, q8 or q4: quantizes each model's MatMuls at load (once: the result is kept in --cache-dir), for models " +
      "whose registry entry does not say. TGI's GPU methods (gptq, awq, ...) are refused by name.",
    parse: quantize,
  }),
  dtype: value({
    default: 'auto',
    description: `auto, ${GRAPH_DTYPES.join(', ')}: which graph file of a model directory to serve (auto: the most precise present).`,
    parse: (raw): DtypeChoice => {
      if (raw !== 'auto' && !(GRAPH_DTYPES as readonly string[]).includes(raw)) {
        throw new ConfigError(`--dtype must be auto, ${GRAPH_DTYPES.join(', ')}; got "${raw}"`);
      }
      return raw as DtypeChoice;
    },
  }),
  'quantize-block-size': value({
    default: '',
    defaultHelp: '(q8 128, q4 32)',
    description: 'Weights per quantization block: 16, 32, 64, 128 or 256.',
    parse: (raw): number | null => {
      const block = Number(raw);
      if (raw === '') return null;
      if (!/^\d+$/.test(raw) || block < 16 || block > 256 || (block & (block - 1)) !== 0) {
        throw new ConfigError(`--quantize-block-size must be 16, 32, 64, 128 or 256, got "${raw}"`);
      }
      return block;
    },
  }),
  'cache-dir': value({
    default: '',
    defaultHelp: `(${defaultCacheDir()})`,
    description: 'Where prepared graphs (quantized weights, attention rewrite checks) are kept between loads.',
    parse: (raw, { cwd, env }) => (raw === '' ? defaultCacheDir(env) : resolve(cwd, raw)),
  }),
  'device-memory': value({
    default: 'auto',
    description:
      `A worker's model pool budget: a byte count or KiB, MiB, GiB. auto is ${AUTO_MEMORY_SHARE * 100} % of the ` +
      `host's available memory on a CPU (the launcher divides it among its workers), ${AUTO_CUDA_MEMORY} with ` +
      '--execution-provider cuda.',
    parse: (raw, ctx) => {
      const bytes =
        raw === 'auto'
          ? ctx.raw('execution-provider') === 'cuda'
            ? parseBytes(AUTO_CUDA_MEMORY)
            : autoDeviceMemory()
          : parseBytes(raw);
      if (bytes === null) {
        throw new ConfigError(`--device-memory must be a size like 2GiB or 512MiB, or auto, got "${raw}"`);
      }
      return bytes;
    },
  }),
  'host-memory': value({
    default: 'auto',
    description:
      `The parked tier's budget (models kept in host memory): a size, or 0 to turn parking off. auto is ` +
      `${AUTO_HOST_SHARE * 100} % of the host's available memory (${AUTO_CUDA_HOST_SHARE * 100} % with CUDA).`,
    parse: (raw, ctx) => {
      const bytes =
        raw === 'auto' ? autoHostMemory(1, ctx.raw('execution-provider')) : raw.trim() === '0' ? 0 : parseBytes(raw);
      if (bytes === null) {
        throw new ConfigError(`--host-memory must be a size like 2GiB or 512MiB, 0 or auto, got "${raw}"`);
      }
      return bytes;
    },
  }),
  'keep-alive': value({
    default: '5m',
    description:
      'How long an idle model stays loaded: a duration (ms, s, m or h; bare numbers are seconds), or -1 or never.',
    parse: (raw): number => {
      const ms = raw === 'never' ? -1 : parseDuration(raw);
      if (ms === null || (ms < 0 && ms !== -1000 && ms !== -1)) {
        throw new ConfigError(`--keep-alive must be a duration like 5m, or never (-1), got "${raw}"`);
      }
      return ms < 0 ? -1 : ms;
    },
  }),
  'execution-provider': value({
    default: 'cpu',
    description: 'Where the workers run models: cpu or cuda.',
    parse: oneOf('cpu', 'cuda'),
  }),
  'intra-op-threads': value({
    default: '0',
    description: "ONNX Runtime's threads per session (0: its own choice).",
    parse: integer(0),
  }),
  attention: value({
    default: 'rewrite',
    description: "rewrite (each model's attention reads a KV cache the worker owns) or export (the graph as exported).",
    parse: oneOf('rewrite', 'export'),
  }),
  'intra-op-spin': value({
    default: 'auto',
    description:
      "Whether ONNX Runtime's threads spin between parallel sections: auto (models of 128 MiB of weights or more), " +
      'true, false, or how long to spin before sleeping (50us, 1ms).',
    parse: (raw) => {
      const spin = parseSpin(raw);
      if (spin === undefined) {
        throw new ConfigError(`--intra-op-spin must be auto, true, false or a time like 50us or 1ms, got "${raw}"`);
      }
      return spin;
    },
  }),
  'lock-duration': value({
    default: '30s',
    description: "BullMQ's lock on a running job (at least 1s): a worker that dies loses it after this long.",
    parse: duration(1000),
  }),
  'drain-timeout': value({
    default: '30s',
    description:
      'How long a stopping worker lets running requests finish; the launcher kills a child still running 10 s after it.',
    parse: duration(0),
  }),
});

/** Flags only a worker started on its own takes (the launcher sets these itself, or leaves their defaults). */
const WORKER_FLAGS = scoped(WORKER, {
  'worker-id': value({
    default: '',
    defaultHelp: '(<host name>-<pid>)',
    description: "The worker's id in heartbeats and placement: 1-128 letters, digits or . _ -.",
    parse: (raw) => {
      const id = raw || `${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}`;
      if (!isValidId(id)) throw new ConfigError(`--worker-id must be 1-128 letters, digits or . _ -, got "${id}"`);
      return id;
    },
  }),
  preload: list({
    default: '',
    description:
      'A model to load at start: a model directory, or ID=DIR; repeatable (comma-separated in the variable).',
    parse: (items, { cwd, name }) => items.map((item) => modelSpecFromArg(item, false, cwd, name)),
  }),
  pin: list({
    default: '',
    description: 'A model to load at start and never evict, as --preload.',
    parse: (items, { cwd, name }) => items.map((item) => modelSpecFromArg(item, true, cwd, name)),
  }),
  'place-timeout': value({
    default: '10s',
    description: 'How long a load that does not fit waits for a model to go idle.',
    parse: duration(0),
  }),
  'replica-queue-wait': value({
    default: '5s',
    description:
      'A model whose oldest queued job waits longer than this (at least 100ms) gets a replica on another worker.',
    parse: duration(100),
  }),
  'heartbeat-interval': value({
    default: '1s',
    description: 'How often the worker writes its heartbeat (at least 100ms).',
    parse: duration(100),
  }),
});

export const FLAGS = { ...API_FLAGS, ...SHARED_FLAGS, ...WORKER_FLAGS } satisfies Record<string, Flag>;
