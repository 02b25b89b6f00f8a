/**
 * The platform's configuration, as the launcher and the API read it: TGI's launcher flags with TGI's defaults
 * where they apply, plus Switchyard's own (the table in flags.ts). Read once at boot from flags and SWITCHYARD_*
 * variables, validated, typed. The worker flags among them are handed to the workers the launcher starts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from './config-error';
import { flagsOf, readFlags, usageOf } from './flag-table';
import { FLAGS } from './flags';
import { autoDeviceMemory, autoHostMemory, isLoopback } from './flag-values';

/** The API's typed configuration: what `readApiConfig` returns (each field's meaning is its flag's, in flags.ts). */
export type ApiConfig = ReturnType<typeof readApiConfig>;

export const LAUNCHER_USAGE = usageOf(
  FLAGS,
  'launcher',
  'Usage: npm start -- [flags]   (or: switchyard [flags]; switchyard convert --help prepares a model directory)',
);

/** The API process's --help: it takes the launcher's flags, which the launcher hands it. */
export const API_USAGE = usageOf(
  FLAGS,
  'api',
  'Usage: node dist/apps/api/src/main.js [flags]   (the launcher starts it with its own flags)',
);

export function readApiConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()) {
  const flags = readFlags(FLAGS, 'api', API_USAGE, argv, env, cwd);
  const modelDir = flags.get('model-id');
  const modelName = flags.get('model-name');
  const quantize = flags.get('quantize');
  const maxInputTokens = flags.get('max-input-tokens');
  const maxTotalTokens = flags.get('max-total-tokens');
  if (maxInputTokens !== null && maxTotalTokens !== null && maxInputTokens >= maxTotalTokens) {
    throw new ConfigError(`--max-input-tokens (${maxInputTokens}) must be < --max-total-tokens (${maxTotalTokens})`);
  }
  const hostname = flags.get('hostname');
  const disableAuth = flags.get('disable-auth');
  if (disableAuth && !isLoopback(hostname) && !flags.get('disable-auth-on-public-interface')) {
    throw new ConfigError(
      `--disable-auth with --hostname ${hostname} would open every route, admin included, to anyone who can ` +
        'reach the port: listen on 127.0.0.1, ::1 or localhost, or add --disable-auth-on-public-interface to mean it',
    );
  }
  const numWorkers = flags.get('num-workers');
  const executionProvider = flags.get('execution-provider');
  const workerArgs: string[] = [];
  for (const [name, f] of flagsOf(FLAGS, 'api')) {
    if (!f.processes.includes('worker')) continue;
    let value = flags.raw(name);
    // the launcher's workers share the host: each gets its share of the available memory
    if (name === 'device-memory' && value === 'auto' && executionProvider === 'cpu') {
      value = String(autoDeviceMemory(numWorkers));
    }
    if (name === 'host-memory' && value === 'auto') value = String(autoHostMemory(numWorkers, executionProvider));
    workerArgs.push(`--${name}=${value}`);
  }
  return {
    hostname,
    port: flags.get('port'),
    modelDir,
    modelName,
    databaseUrl: flags.get('database-url'),
    redisUrl: flags.get('redis-url'),
    redisPrefix: flags.get('redis-prefix'),
    maxConcurrentRequests: flags.get('max-concurrent-requests'),
    maxStopSequences: flags.get('max-stop-sequences'),
    maxBestOf: flags.get('max-best-of'),
    maxTopNTokens: flags.get('max-top-n-tokens'),
    maxInputTokens,
    maxTotalTokens,
    payloadLimit: flags.get('payload-limit'),
    numWorkers,
    quantize,
    disableAuth,
    workerArgs,
    executionProvider,
    adminKey: adminKey(env),
    fallbackQueueWaitMs: flags.get('fallback-queue-wait'),
    coldStartTimeoutMs: flags.get('cold-start-timeout'),
    version: packageVersion(),
  };
}

function adminKey(env: NodeJS.ProcessEnv): string | null {
  const key = env.SWITCHYARD_ADMIN_KEY?.trim();
  if (!key) return null;
  if (key.length < 16 || key.length > 256 || /\s/.test(key)) {
    throw new ConfigError('SWITCHYARD_ADMIN_KEY must be 16 to 256 characters with no spaces');
  }
  return key;
}

/** dist/libs/config/src -> the repository's package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../../../package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
