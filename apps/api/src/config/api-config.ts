/**
 * The API's configuration: read once at boot from flags and SWITCHYARD_* variables, validated, typed. Nothing
 * else in the app reads process.env or argv.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

export interface ApiConfig {
  hostname: string;
  port: number;
  /** The directory of the default model. */
  modelDir: string;
  /** The id clients use for the default model: the directory's name unless --model-name says otherwise. */
  modelName: string;
  databaseUrl: string;
  /** Switchyard's version, from package.json, for `/info`. */
  version: string;
}

export const API_CONFIG = Symbol('API_CONFIG');

/** A configuration problem; start-up prints its message, which names the flag, and exits non-zero. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export const API_FLAGS = {
  hostname: { type: 'string', env: 'SWITCHYARD_HOSTNAME', default: '127.0.0.1' },
  port: { type: 'string', env: 'SWITCHYARD_PORT', default: '8080' },
  'model-id': { type: 'string', env: 'SWITCHYARD_MODEL_ID', default: 'models/demo-small' },
  'model-name': { type: 'string', env: 'SWITCHYARD_MODEL_NAME', default: '' },
  'database-url': {
    type: 'string',
    env: 'SWITCHYARD_DATABASE_URL',
    default: 'postgres://postgres@127.0.0.1:5432/switchyard',
  },
} as const;

type FlagName = keyof typeof API_FLAGS;

/** Flags from argv, then the SWITCHYARD_* variable, then the default. Unknown flags are refused by name. */
export function readFlags(argv: string[], env: NodeJS.ProcessEnv): Record<FlagName, string> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.keys(API_FLAGS).map((k) => [k, { type: 'string' as const }])),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | undefined>;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const out = {} as Record<FlagName, string>;
  for (const [name, spec] of Object.entries(API_FLAGS) as [FlagName, (typeof API_FLAGS)[FlagName]][]) {
    const value = values[name] ?? env[spec.env] ?? spec.default;
    out[name] = String(value);
  }
  return out;
}

export function parsePort(flag: string, raw: string): number {
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    throw new ConfigError(`--${flag} must be a port number from 1 to 65535, got "${raw}"`);
  }
  return port;
}

export function readApiConfig(argv: string[], env: NodeJS.ProcessEnv, cwd = process.cwd()): ApiConfig {
  const flags = readFlags(argv, env);
  const modelDir = resolve(cwd, flags['model-id']);
  const modelName = flags['model-name'] || basename(modelDir);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(modelName)) {
    throw new ConfigError(`--model-name "${modelName}" must be 1-128 letters, digits or . _ : / -`);
  }
  return {
    hostname: flags.hostname,
    port: parsePort('port', flags.port),
    modelDir,
    modelName,
    databaseUrl: flags['database-url'],
    version: packageVersion(),
  };
}

/** dist/apps/api/src/config -> the repository's package.json. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../../../../package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
