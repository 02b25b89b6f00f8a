/**
 * The platform's configuration, as the launcher and the API read it: TGI's launcher flags with TGI's defaults
 * where they apply, plus Switchyard's own. Read once at boot from flags and SWITCHYARD_* variables, validated,
 * typed. Nothing else in the app reads process.env or argv. The worker flags among them are handed to the
 * workers the launcher starts.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_VALIDATION_LIMITS } from '@switchyard/batching';
import { isValidId } from '@switchyard/protocol';
import { parseQuantize, Quantize } from '@switchyard/models';
import { autoDeviceMemory, autoHostMemory, WORKER_FLAGS } from '@switchyard/config';

export interface ApiConfig {
  hostname: string;
  port: number;
  /** The directory of the default model. */
  modelDir: string;
  /** The id clients use for the default model: the directory's name unless --model-name says otherwise. */
  modelName: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  /** Requests in flight across all models before new ones get 429. */
  maxConcurrentRequests: number;
  maxStopSequences: number;
  maxBestOf: number;
  maxTopNTokens: number;
  /** Limits of the default model; null takes the model's own (max positions - 1, max positions). */
  maxInputTokens: number | null;
  maxTotalTokens: number | null;
  /** The largest request body, in bytes (TGI's --payload-limit). */
  payloadLimit: number;
  /** How many workers the launcher starts. */
  numWorkers: number;
  /** Quantization at load of the default model (and of models whose registry entry does not say). */
  quantize: Quantize;
  disableAuth: boolean;
  /** Flags handed to every worker the launcher starts (batch budgets, memory, keep-alive, provider). */
  workerArgs: string[];
  /** The admin key from SWITCHYARD_ADMIN_KEY (never a flag, so it stays out of process listings). */
  adminKey: string | null;
  /** A request falls back to the next model when its model's oldest queued job has waited longer than this. */
  fallbackQueueWaitMs: number;
  /** Where the workers run models (cpu or cuda), for `x-compute-type` and `/info`. */
  executionProvider: string;
  /** Switchyard's version, from package.json, for `/info`. */
  version: string;
}

export const API_CONFIG = Symbol('API_CONFIG');

/** A configuration problem; start-up prints its message, which names the flag, and exits non-zero. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

interface Flag {
  env: string;
  default: string;
  boolean?: true;
  /** Handed to the workers as it is. */
  worker?: true;
}

/** A worker flag the launcher hands to its workers: its variable and default are the worker's own. */
function passthrough(name: string): Flag {
  const spec = WORKER_FLAGS[name];
  return { env: spec.env, default: spec.default, worker: true };
}

export const API_FLAGS: Record<string, Flag> = {
  hostname: { env: 'SWITCHYARD_HOSTNAME', default: '127.0.0.1' },
  port: { env: 'SWITCHYARD_PORT', default: '8080' },
  'model-id': { env: 'SWITCHYARD_MODEL_ID', default: 'models/demo-small' },
  'model-name': { env: 'SWITCHYARD_MODEL_NAME', default: '' },
  'database-url': { env: 'SWITCHYARD_DATABASE_URL', default: 'postgres://postgres@127.0.0.1:5432/switchyard' },
  'redis-url': passthrough('redis-url'),
  'redis-prefix': passthrough('redis-prefix'),
  'max-concurrent-requests': { env: 'SWITCHYARD_MAX_CONCURRENT_REQUESTS', default: '128' },
  'max-stop-sequences': {
    env: 'SWITCHYARD_MAX_STOP_SEQUENCES',
    default: String(DEFAULT_VALIDATION_LIMITS.maxStopSequences),
  },
  'max-best-of': { env: 'SWITCHYARD_MAX_BEST_OF', default: String(DEFAULT_VALIDATION_LIMITS.maxBestOf) },
  'max-top-n-tokens': { env: 'SWITCHYARD_MAX_TOP_N_TOKENS', default: String(DEFAULT_VALIDATION_LIMITS.maxTopNTokens) },
  'max-input-tokens': { env: 'SWITCHYARD_MAX_INPUT_TOKENS', default: '' },
  'max-total-tokens': { env: 'SWITCHYARD_MAX_TOTAL_TOKENS', default: '' },
  'payload-limit': { env: 'SWITCHYARD_PAYLOAD_LIMIT', default: '2000000' },
  'max-batch-prefill-tokens': passthrough('max-batch-prefill-tokens'),
  'max-batch-total-tokens': passthrough('max-batch-total-tokens'),
  'max-batch-size': passthrough('max-batch-size'),
  'waiting-served-ratio': passthrough('waiting-served-ratio'),
  'max-waiting-tokens': passthrough('max-waiting-tokens'),
  quantize: passthrough('quantize'),
  dtype: passthrough('dtype'),
  'quantize-block-size': passthrough('quantize-block-size'),
  'cache-dir': passthrough('cache-dir'),
  'num-workers': { env: 'SWITCHYARD_NUM_WORKERS', default: '1' },
  'device-memory': passthrough('device-memory'),
  'host-memory': passthrough('host-memory'),
  'keep-alive': passthrough('keep-alive'),
  'execution-provider': passthrough('execution-provider'),
  'intra-op-threads': passthrough('intra-op-threads'),
  attention: passthrough('attention'),
  'intra-op-spin': passthrough('intra-op-spin'),
  'lock-duration': passthrough('lock-duration'),
  'drain-timeout': passthrough('drain-timeout'),
  'disable-auth': { env: 'SWITCHYARD_DISABLE_AUTH', default: 'false', boolean: true },
  'disable-auth-on-public-interface': {
    env: 'SWITCHYARD_DISABLE_AUTH_ON_PUBLIC_INTERFACE',
    default: 'false',
    boolean: true,
  },
  'fallback-queue-wait': { env: 'SWITCHYARD_FALLBACK_QUEUE_WAIT', default: '10000' },
};

/** TGI's older names for the same flags. */
const ALIASES: Record<string, string> = { 'max-input-length': 'max-input-tokens' };

export const API_USAGE = `Usage: npm start -- [flags]   (or: switchyard [flags])

Flags (each also read from the SWITCHYARD_* variable named in brackets):
${Object.entries(API_FLAGS)
  .map(([name, f]) => `  --${name.padEnd(32)} [${f.env}] default: ${f.default || '(from the model)'}`)
  .join('\n')}
  --max-input-length is accepted for --max-input-tokens.`;

function readFlags(argv: string[], env: NodeJS.ProcessEnv): Record<string, string> {
  let values: Record<string, string | boolean | undefined>;
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const [name, f] of Object.entries(API_FLAGS)) options[name] = { type: f.boolean ? 'boolean' : 'string' };
  for (const alias of Object.keys(ALIASES)) options[alias] = { type: 'string' };
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${API_USAGE}`);
  }
  for (const [alias, name] of Object.entries(ALIASES)) {
    if (values[alias] !== undefined) values[name] ??= values[alias];
  }
  const out: Record<string, string> = {};
  for (const [name, f] of Object.entries(API_FLAGS)) out[name] = String(values[name] ?? env[f.env] ?? f.default);
  return out;
}

export function parsePort(flag: string, raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw new ConfigError(`--${flag} must be a port number from 1 to 65535, got "${raw}"`);
  }
  return port;
}

function positiveInt(flags: Record<string, string>, name: string, min = 1): number {
  const raw = flags[name];
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || !Number.isSafeInteger(n)) {
    throw new ConfigError(`--${name} must be an integer >= ${min}, got "${raw}"`);
  }
  return n;
}

export function readApiConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): ApiConfig {
  const flags = readFlags(argv, env);
  const modelDir = resolve(cwd, flags['model-id']);
  const modelName = flags['model-name'] || basename(modelDir);
  if (!isValidId(modelName)) {
    throw new ConfigError(`--model-name "${modelName}" must be 1-128 letters, digits or . _ - (no spaces or colons)`);
  }
  if (!/^rediss?:\/\//.test(flags['redis-url'])) {
    throw new ConfigError(`--redis-url must be a redis:// URL, got "${flags['redis-url']}"`);
  }
  if (!/^postgres(ql)?:\/\//.test(flags['database-url'])) {
    throw new ConfigError(`--database-url must be a postgres:// URL, got "${flags['database-url']}"`);
  }
  let quantize: Quantize;
  try {
    quantize = parseQuantize(flags.quantize);
  } catch (err) {
    throw new ConfigError(`--quantize ${(err as Error).message}`);
  }
  const optionalInt = (name: string): number | null => (flags[name] === '' ? null : positiveInt(flags, name));
  const maxInputTokens = optionalInt('max-input-tokens');
  const maxTotalTokens = optionalInt('max-total-tokens');
  if (maxInputTokens !== null && maxTotalTokens !== null && maxInputTokens >= maxTotalTokens) {
    throw new ConfigError(`--max-input-tokens (${maxInputTokens}) must be < --max-total-tokens (${maxTotalTokens})`);
  }
  const disableAuth = flags['disable-auth'] === 'true';
  if (disableAuth && !isLoopback(flags.hostname) && flags['disable-auth-on-public-interface'] !== 'true') {
    throw new ConfigError(
      `--disable-auth with --hostname ${flags.hostname} would open every route, admin included, to anyone who can ` +
        'reach the port: listen on 127.0.0.1, ::1 or localhost, or add --disable-auth-on-public-interface to mean it',
    );
  }
  const numWorkers = positiveInt(flags, 'num-workers', 0);
  const workerArgs: string[] = [];
  for (const [name, f] of Object.entries(API_FLAGS)) {
    let value = flags[name];
    // the launcher's workers share the host: each gets its share of the available memory
    if (name === 'device-memory' && value === 'auto' && flags['execution-provider'] === 'cpu') {
      value = String(autoDeviceMemory(numWorkers));
    }
    if (name === 'host-memory' && value === 'auto')
      value = String(autoHostMemory(numWorkers, flags['execution-provider']));
    if (f.worker) workerArgs.push(`--${name}=${value}`);
  }
  return {
    hostname: flags.hostname,
    port: parsePort('port', flags.port),
    modelDir,
    modelName,
    databaseUrl: flags['database-url'],
    redisUrl: flags['redis-url'],
    redisPrefix: flags['redis-prefix'],
    maxConcurrentRequests: positiveInt(flags, 'max-concurrent-requests'),
    maxStopSequences: positiveInt(flags, 'max-stop-sequences', 0),
    maxBestOf: positiveInt(flags, 'max-best-of'),
    maxTopNTokens: positiveInt(flags, 'max-top-n-tokens', 0),
    maxInputTokens,
    maxTotalTokens,
    payloadLimit: positiveInt(flags, 'payload-limit'),
    numWorkers,
    quantize,
    disableAuth,
    workerArgs,
    executionProvider: flags['execution-provider'],
    adminKey: adminKey(env),
    fallbackQueueWaitMs: positiveInt(flags, 'fallback-queue-wait', 0),
    version: packageVersion(),
  };
}

/** Whether the API listens on the loopback interface only: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(hostname: string): boolean {
  const host = hostname
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function adminKey(env: NodeJS.ProcessEnv): string | null {
  const key = env.SWITCHYARD_ADMIN_KEY?.trim();
  if (!key) return null;
  if (key.length < 16 || key.length > 256 || /\s/.test(key)) {
    throw new ConfigError('SWITCHYARD_ADMIN_KEY must be 16 to 256 characters with no spaces');
  }
  return key;
}

/** dist/apps/api/src/config -> the repository's package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../../../../package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
