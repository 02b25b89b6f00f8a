/**
 * The value kinds the flag table's parsers share: spin settings, model specs given on the command line, the API's
 * address, and the `auto` memory budgets (durations are @switchyard/protocol's `parseDuration`, shared with `keep_alive`). Plain
 * functions: each flag's parser in flags.ts calls them.
 */
import { isIPv6 } from 'node:net';
import { basename, resolve } from 'node:path';
import { isValidId, ModelSpec } from '@switchyard/protocol';
import { availableMemoryBytes } from '@switchyard/models';
import { ConfigError } from './config-error';

/**
 * The shares of the host's available memory that `--device-memory auto` and `--host-memory auto` give a CPU worker.
 * On a CPU both tiers live in the same RAM: resident models (weights, KV reservation, working memory) and parked
 * ones (their weights and sessions) split it.
 */
export const AUTO_MEMORY_SHARE = 0.6;
export const AUTO_HOST_SHARE = 0.2;
/** `--device-memory auto` with CUDA: the device's memory is not known to this process. */
export const AUTO_CUDA_MEMORY = '8GiB';
/** `--host-memory auto` with CUDA: parked models' weights live in host memory, beside nothing else of ours. */
export const AUTO_CUDA_HOST_SHARE = 0.5;

/** `--device-memory auto` for a CPU worker: its share of the host's available memory now. */
export function autoDeviceMemory(workers = 1): number {
  return Math.floor((availableMemoryBytes() * AUTO_MEMORY_SHARE) / Math.max(1, workers));
}

/** `--host-memory auto`: the parked tier's share of the host's available memory now. */
export function autoHostMemory(workers = 1, executionProvider = 'cpu'): number {
  const share = executionProvider === 'cuda' ? AUTO_CUDA_HOST_SHARE : AUTO_HOST_SHARE;
  return Math.floor((availableMemoryBytes() * share) / Math.max(1, workers));
}

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

/** `DIR` or `ID=DIR` → a spec with the model's own limits. */
export function modelSpecFromArg(arg: string, pinned: boolean, cwd: string, flagName: string): ModelSpec {
  const eq = arg.indexOf('=');
  const dir = resolve(cwd, eq >= 0 ? arg.slice(eq + 1) : arg);
  const id = eq >= 0 ? arg.slice(0, eq) : basename(dir);
  if (!isValidId(id))
    throw new ConfigError(`--${flagName} "${arg}": the model id "${id}" must be letters, digits or . _ -`);
  return { id, path: dir, pinned, maxInputTokens: null, maxTotalTokens: null, quantization: null };
}

/** Whether the API listens on the loopback interface only: 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(hostname: string): boolean {
  const host = hostname
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** The URL of an API listening on `hostname`: an IPv6 address goes in brackets (`http://[::1]:8080`). */
export function apiUrl(hostname: string, port: number): string {
  const host = hostname.trim().replace(/^\[(.*)\]$/, '$1');
  return `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}
