/**
 * A Redis and a Postgres of a test's own, on free ports with temporary data directories, never the machine's
 * services: the fault tests stop and start them under a running platform. Postgres runs as the `postgres` user when
 * the tests run as root (it refuses root), from the binaries of the installed major version.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './launched';

/** Runs a Postgres binary, as `postgres` when this process is root. */
function pgRun(bin: string, args: string[]): string {
  const root = process.getuid?.() === 0;
  const [cmd, argv] = root ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function pgBin(name: string): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) {
    const path = join(base, v, 'bin', name);
    if (existsSync(path)) return path;
  }
  return name; // on the PATH
}

export class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'switchyard-pg-'));
  port = 0;
  running = false;

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/switchyard`;
  }

  /** initdb, start, and create the database. */
  async init(): Promise<void> {
    this.port = await freePort();
    if (process.getuid?.() === 0) chownSync(this.dir, uid('postgres'), gid('postgres'));
    pgRun(pgBin('initdb'), ['-D', join(this.dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
    this.start();
    pgRun(pgBin('createdb'), ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', 'switchyard']);
  }

  /** Starts the server and waits until it accepts connections (pg_ctl -w). */
  start(): void {
    pgRun(pgBin('pg_ctl'), [
      '-D',
      join(this.dir, 'data'),
      '-w',
      '-l',
      join(this.dir, 'log'),
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
    this.running = true;
  }

  /** Stops it at once (`-m fast`: sessions are cut, as in a crash or a failover). */
  stop(): void {
    pgRun(pgBin('pg_ctl'), ['-D', join(this.dir, 'data'), '-w', '-m', 'fast', 'stop']);
    this.running = false;
  }

  /** A query through psql, for assertions (the rows as psql prints them, unaligned). */
  query(sql: string): string {
    return pgRun(pgBin('psql'), [
      '-h',
      '127.0.0.1',
      '-p',
      String(this.port),
      '-U',
      'postgres',
      '-d',
      'switchyard',
      '-Atc',
      sql,
    ]).trim();
  }

  destroy(): void {
    try {
      this.stop();
    } catch {
      // not running
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export class PrivateRedis {
  port = 0;
  private child: ChildProcess | null = null;

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null;
  }

  /** Starts redis-server in the foreground (no persistence) and waits for its PONG. */
  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    this.child = child;
    const client = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined); // refused until it listens: the loop below retries
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await client.connect();
        await client.ping();
        client.disconnect();
        return;
      } catch {
        client.disconnect();
        if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode})`);
        if (Date.now() > deadline) throw new Error('redis-server did not answer within 10 s');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Kills it (what it held is gone, as with a Redis that restarts without persistence). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.on('exit', () => resolve());
      child.kill('SIGKILL');
    });
    this.child = null;
  }
}

function uid(user: string): number {
  return Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
}

function gid(user: string): number {
  return Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
}
