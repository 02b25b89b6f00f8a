/**
 * The whole platform as `npm start` starts it (the compiled launcher: migrations, registration, the API and its
 * workers), on a free port, its own Redis prefix and a test database, for end-to-end tests and benchmarks.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { PoolEvent } from '@switchyard/protocol';
import { REPO_ROOT } from './repo';

const LAUNCHER = join(REPO_ROOT, 'dist/apps/launcher/src/main.js');
const API_MAIN = join(REPO_ROOT, 'dist/apps/api/src/main.js');
const PREPARE_MAIN = join(REPO_ROOT, 'dist/apps/api/src/prepare.main.js');
const WORKER_MAIN = join(REPO_ROOT, 'dist/apps/gpu-worker/src/main.js');
export const TEST_DATABASE_URL =
  process.env.SWITCHYARD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/switchyard_test';
const REDIS_URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

export interface Stores {
  redisUrl?: string;
  databaseUrl?: string;
}

export class LaunchedPlatform {
  readonly prefix = `sy-test-${randomUUID().slice(0, 8)}:`;
  readonly redisUrl: string;
  readonly databaseUrl: string;
  /** The admin key this platform is started with (SWITCHYARD_ADMIN_KEY). */
  readonly adminKey = `sy-test-admin-${randomUUID()}`;
  url = '';
  port = 0;
  private child: ChildProcess | null = null;
  /** Processes started beside the launcher (an API replica, or workers of an API started alone). */
  private readonly others: ChildProcess[] = [];
  private readonly workers = new Map<string, ChildProcess>();
  private log = '';

  /** On the machine's Redis and test database, or on the stores given (the fault tests' own). */
  constructor(stores: Stores = {}) {
    this.redisUrl = stores.redisUrl ?? REDIS_URL;
    this.databaseUrl = stores.databaseUrl ?? TEST_DATABASE_URL;
  }

  /** The launcher's process id. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts the launcher with these flags (plus port, prefix and database), and `env` added to this process's
   * environment, and waits until it is ready.
   */
  async start(flags: string[] = [], env: Record<string, string> = {}): Promise<void> {
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    const child = spawn(process.execPath, [LAUNCHER, ...this.serviceArgs(this.port), ...flags], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', SWITCHYARD_ADMIN_KEY: this.adminKey, ...env },
    });
    this.child = child;
    child.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the platform did not start:\n${this.log}`)), 120_000);
      const check = (d: Buffer) => {
        if (d.toString().includes('switchyard: ready:')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', check);
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the launcher exited (${code}) during start-up:\n${this.log}`));
      });
    });
  }

  /** The flags that put an API (or the launcher) on `port`, this platform's Redis prefix and the test database. */
  private serviceArgs(port: number): string[] {
    return [
      '--port',
      String(port),
      '--redis-prefix',
      this.prefix,
      '--redis-url',
      this.redisUrl,
      '--database-url',
      this.databaseUrl,
    ];
  }

  /**
   * A second API process on the same Redis and Postgres (another replica behind a load balancer would be this),
   * with `flags`. Resolves once it answers /health 200, or (`healthy: false`) once it answers at all.
   */
  async startReplica(
    flags: string[] = [],
    { healthy = true } = {},
  ): Promise<{ url: string; stop: () => Promise<void> }> {
    const { child, url } = await this.spawnApi(flags, healthy);
    this.others.push(child);
    return {
      url,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.on('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  }

  /**
   * The API alone, as a deployment scaled to zero runs it: the preparation step (migrations, `--model-id`
   * registered), then the API process with `flags`, and no worker. Resolves once it answers HTTP (its /health says
   * 503 until a worker is up).
   */
  async startApiAlone(flags: string[] = []): Promise<void> {
    const args = [...this.serviceArgs(await freePort()), ...flags];
    try {
      execFileSync(process.execPath, [PREPARE_MAIN, ...args], { cwd: REPO_ROOT, env: this.env(), stdio: 'pipe' });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: Buffer; stderr?: Buffer };
      throw new Error(`the preparation step failed:\n${String(stdout ?? '')}${String(stderr ?? '')}`, { cause: err });
    }
    const api = await this.spawnApi(flags, false);
    this.child = api.child;
    this.port = api.port;
    this.url = api.url;
  }

  /**
   * A worker process on this platform's Redis and prefix, with `flags`; it is stopped with the platform. Returns at
   * once, with the epoch milliseconds it was spawned at.
   */
  spawnWorker(id: string, flags: string[] = []): { child: ChildProcess; spawnedAt: number; output: () => string } {
    const spawnedAt = Date.now();
    const child = spawn(
      process.execPath,
      [WORKER_MAIN, '--worker-id', id, '--redis-url', this.redisUrl, '--redis-prefix', this.prefix, ...flags],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: this.env() },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    this.others.push(child);
    this.workers.set(id, child);
    return { child, spawnedAt, output: () => output };
  }

  /** SIGTERM to a worker `spawnWorker` started; resolves once it has exited (having drained and left). */
  async stopWorker(id: string): Promise<void> {
    const child = this.workers.get(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, NO_COLOR: '1', SWITCHYARD_ADMIN_KEY: this.adminKey };
  }

  /**
   * An API process on a free port with `flags`; resolves once /health answers 200 (`healthy`) or answers at all.
   * Its output goes to this platform's log.
   */
  private async spawnApi(
    flags: string[],
    healthy: boolean,
  ): Promise<{ child: ChildProcess; port: number; url: string }> {
    const port = await freePort();
    const child = spawn(process.execPath, [API_MAIN, ...this.serviceArgs(port), ...flags], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: this.env(),
    });
    child.stdout.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (this.log += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the API exited (${child.exitCode}):\n${this.log}`);
      const answered = await fetch(`${url}/health`).then(
        (r) => r.ok || !healthy,
        () => false,
      );
      if (answered) return { child, port, url };
      if (Date.now() > deadline) throw new Error(`the API did not come up:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Headers that authenticate as the admin (or as `key`). */
  auth(key = this.adminKey): Record<string, string> {
    return { authorization: `Bearer ${key}` };
  }

  /**
   * POSTs `body` (as JSON, or a string as it is) with the admin key; the response, its text, and its JSON (null when
   * the body is not JSON: SSE, or empty).
   */
  async post(path: string, body: unknown, headers: Record<string, string> = {}) {
    const res = await fetch(`${this.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.auth(), ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // SSE or empty
    }
    return { res, text, json: json as Record<string, unknown> };
  }

  output(): string {
    return this.log;
  }

  /** Ctrl-C, as a user stops it; resolves with the launcher's exit code. Removes the test's Redis keys. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child) return null;
    const exited = new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.on('exit', (code) => resolve(code));
    });
    child.kill('SIGINT');
    const others = this.others
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map((c) => {
        const exit = new Promise((resolve) => c.on('exit', resolve));
        c.kill('SIGTERM');
        return exit;
      });
    const code = await exited;
    await Promise.all(others);
    const redis = new Redis(this.redisUrl);
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    await redis.quit();
    return code;
  }

  /** The workers' pool events (loads, parks, evictions), oldest first. */
  async events(): Promise<PoolEvent[]> {
    const redis = new Redis(this.redisUrl);
    try {
      const raw = await redis.lrange(`${this.prefix}events`, 0, -1);
      return raw.map((e) => JSON.parse(e) as PoolEvent).reverse();
    } finally {
      await redis.quit();
    }
  }

  /** A metric's value from `/metrics`, summed over the series whose labels include `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    let total = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const set = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) total += Number(m[3]);
    }
    return total;
  }
}
