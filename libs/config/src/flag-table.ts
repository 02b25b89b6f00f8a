/**
 * The flag-table format and what is derived from it: the argv/environment reader, the per-flag parse (which is the
 * validation, and the source of the typed value) and each process's `--help`. The table itself is flags.ts.
 */
import { parseArgs } from 'node:util';
import { ConfigError } from './config-error';

/**
 * The processes that take flags. The launcher hands its own argv to the API, so the API takes every flag the
 * launcher does; the worker flags the launcher takes are handed to its workers. `convert` is the launcher's
 * `switchyard convert` command, with a table of its own (convert-config.ts).
 */
export type ProcessName = 'launcher' | 'api' | 'worker' | 'convert';

/** What a flag's parser sees besides its own raw value. */
export interface FlagContext {
  /** The flag's name, for messages. */
  name: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Another flag's raw value (flag, else variable, else default), for values that depend on one. */
  raw(name: string): string;
}

interface FlagBase {
  /** false: no variable. Otherwise `SWITCHYARD_<NAME>` (see `envVariable`) is read when the flag is not given. */
  env?: false;
  /** The raw default, parsed like a given value. */
  default: string;
  /** What --help shows for the default, where the raw one says little (an empty string). */
  defaultHelp?: string;
  /** What --help says the flag does (and the values it takes). */
  description: string;
  /** Older names for the same flag (TGI's). */
  aliases?: readonly string[];
  processes: readonly ProcessName[];
}

/** A flag with one value: a string, or a boolean switch (`--flag`, or `true` in its variable). */
export interface ValueFlag<T> extends FlagBase {
  type?: 'string' | 'boolean';
  /** Raw to typed; throws a ConfigError that names the flag. */
  parse: (raw: string, ctx: FlagContext) => T;
}

/** A repeatable flag; its variable is comma-separated. */
export interface ListFlag<T> extends FlagBase {
  type: 'list';
  parse: (items: string[], ctx: FlagContext) => T;
}

export type Flag<T = unknown> = ValueFlag<T> | ListFlag<T>;

/** The typed value of each flag of a table. */
export type FlagValues<Table extends Record<string, Flag>> = {
  [K in keyof Table]: ReturnType<Table[K]['parse']>;
};

/** One process's flags, read from argv and the environment; each is parsed (validated) when first asked for. */
export interface FlagReader<Table extends Record<string, Flag>> {
  /** The typed value; throws ConfigError naming the flag when its value is bad. */
  get<K extends keyof Table & string>(name: K): FlagValues<Table>[K];
  /** The raw value: the flag, else its variable, else its default ('' for an empty list). */
  raw(name: keyof Table & string): string;
}

/** The variable a flag is read from when it is not given: `--max-batch-size` is `SWITCHYARD_MAX_BATCH_SIZE`. */
export function envVariable(name: string, flag: Flag): string | undefined {
  return flag.env === false ? undefined : `SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}`;
}

/** The flags of `table` that `processName` takes, in table order. */
export function flagsOf<Table extends Record<string, Flag>>(
  table: Table,
  processName: ProcessName,
): [keyof Table & string, Flag][] {
  return Object.entries(table).filter(([, f]) => f.processes.includes(processName));
}

/** Reads `processName`'s flags from argv (strictly: an unknown flag is a ConfigError) and the environment. */
export function readFlags<Table extends Record<string, Flag>>(
  table: Table,
  processName: ProcessName,
  usage: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): FlagReader<Table> {
  const taken = new Map(flagsOf(table, processName));
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  const aliasOf = new Map<string, string>();
  for (const [name, f] of taken) {
    const option = {
      type: f.type === 'boolean' ? ('boolean' as const) : ('string' as const),
      multiple: f.type === 'list',
    };
    options[name] = option;
    for (const alias of f.aliases ?? []) {
      options[alias] = option;
      aliasOf.set(alias, name);
    }
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}\n\n${usage}`);
  }
  // the flag's own name wins over an alias
  for (const [alias, name] of aliasOf) if (values[alias] !== undefined) values[name] ??= values[alias];

  const fromEnv = (name: string, f: Flag): string | undefined => {
    const variable = envVariable(name, f);
    return variable ? env[variable] : undefined;
  };
  const spec = (name: string): Flag => {
    const f = taken.get(name);
    if (!f) throw new Error(`the ${processName} does not take --${name}`);
    return f;
  };
  const items = (name: string): string[] => {
    const value = values[name];
    const f = spec(name);
    const given = Array.isArray(value) ? value.map(String) : (fromEnv(name, f) ?? f.default).split(',');
    return given.map((s) => s.trim()).filter(Boolean);
  };
  const raw = (name: string): string => {
    const f = spec(name);
    if (f.type === 'list') return items(name).join(',');
    const value = values[name];
    return value !== undefined ? String(value) : (fromEnv(name, f) ?? f.default);
  };
  const parsed = new Map<string, unknown>();
  return {
    raw,
    get(name) {
      if (!parsed.has(name)) {
        const f = spec(name);
        const ctx: FlagContext = { name, cwd, env, raw };
        parsed.set(name, f.type === 'list' ? f.parse(items(name), ctx) : f.parse(raw(name), ctx));
      }
      return parsed.get(name) as FlagValues<Table>[typeof name];
    },
  };
}

/** `processName`'s --help: a usage line, then every flag it takes with its variable, default and description. */
export function usageOf(table: Record<string, Flag>, processName: ProcessName, usageLine: string): string {
  const flags = flagsOf(table, processName);
  const lines = [
    usageLine,
    '',
    flags.some(([name, f]) => envVariable(name, f))
      ? 'Flags (each also read from the SWITCHYARD_* variable in brackets; a flag given wins over its variable):'
      : 'Flags:',
  ];
  for (const [name, f] of flags) {
    const shown = f.type === 'boolean' ? `--${name}` : `--${name} <value>`;
    const variable = envVariable(name, f) ? `  [${envVariable(name, f)}]` : '';
    lines.push(`  ${shown}${variable}  default: ${f.defaultHelp ?? (f.default === '' ? '(none)' : f.default)}`);
    const aliases = f.aliases?.length ? ` Also accepted as ${f.aliases.map((a) => `--${a}`).join(', ')}.` : '';
    lines.push(...wrap(f.description + aliases, 110).map((l) => `      ${l}`));
  }
  return lines.join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}
