/**
 * Stopping the platform as a service manager does. SIGTERM to `npm start`: npm forwards it to the shell it runs the
 * script through, which dies of it without passing it on, so apps/launcher/bin/switchyard.mjs must notice, stop the launcher, and
 * the launcher its API and workers. Every process of the tree, collected from /proc before the signal, must be gone
 * within the launcher's own stop, none of them killed. And a child that cannot stop is killed at --drain-timeout +
 * 10 s: nothing is left running either way.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, IncomingMessage, request } from 'node:http';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { freePort, TEST_DATABASE_URL } from '../support/launched';
import { REDIS_URL } from '../support/platform';
import { REPO_ROOT } from '../support/repo';

/** A process as /proc shows it; `start` (clock ticks since boot) tells it from a later one with the same pid. */
interface Proc {
  pid: number;
  ppid: number;
  start: string;
  state: string;
  cmd: string;
}

function readProc(pid: number): Proc | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name, in parentheses, may hold spaces and parentheses: the fields follow its last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return { pid, state: fields[0], ppid: Number(fields[1]), start: fields[19], cmd };
  } catch {
    return null; // gone
  }
}

/** `root` and every process below it, by the parent links of /proc/<pid>/stat. */
function processTree(root: number): Proc[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProc(Number(name)))
    .filter((p): p is Proc => p !== null);
  const tree = all.filter((p) => p.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((p) => p.ppid === tree[i].pid));
  return tree;
}

/** Still running: the same process (same start time), and not a zombie waiting for a parent to reap it. */
function isAlive(p: Proc): boolean {
  const now = readProc(p.pid);
  return now !== null && now.start === p.start && now.state !== 'Z';
}

const DRAIN_MS = 1000;
/** Greedy, demo-tiny writes on from this prompt to the length limit without an end of text: about 4 s of work. */
const LONG_PROMPT = 'And it came to pass';
/** The launcher kills children still running 10 s past --drain-timeout. */
const KILL_AFTER_MS = DRAIN_MS + 10_000;
/** Past this, the test gives up waiting for the tree to go. */
const STOP_LIMIT_MS = 40_000;

interface Started {
  child: ChildProcess;
  port: number;
  adminKey: string;
  output(): string;
  /** Resolves once every process holding the child's stdout (the whole tree) has exited. */
  pipesClosed: Promise<void>;
  /** Resolves with the exit code, or the signal's name. */
  exited: Promise<number | string>;
}

/** The processes each test started, to kill whatever is left at the end, and the Redis prefixes to clear. */
const started: Proc[] = [];
const starters: ChildProcess[] = [];
const prefixes: string[] = [];

/** Starts the platform with `command` (npm start, or the bin), on its own port and prefix; resolves once ready. */
async function startPlatform(command: string, args: string[]): Promise<Started> {
  const port = await freePort();
  const adminKey = `sy-test-admin-${randomUUID()}`;
  const prefix = `sy-test-${randomUUID().slice(0, 8)}:`;
  prefixes.push(prefix);
  const flags = [
    ...['--port', String(port), '--redis-prefix', prefix, '--redis-url', REDIS_URL],
    ...['--database-url', TEST_DATABASE_URL, '--model-id', 'models/demo-tiny'],
    ...['--drain-timeout', `${DRAIN_MS}ms`, '--num-workers', '2'],
  ];
  const child = spawn(command, [...args, ...flags], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    // the tests build first: the bin's own install and build are skipped
    env: { ...process.env, NO_COLOR: '1', SWITCHYARD_SKIP_BUILD: '1', SWITCHYARD_ADMIN_KEY: adminKey },
  });
  starters.push(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const pipesClosed = new Promise<void>((resolve) => child.stdout.on('close', resolve));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the platform did not start:\n${output}`)), 120_000);
    child.stdout.on('data', () => {
      if (!output.includes('switchyard: ready:')) return;
      clearTimeout(timer);
      resolve();
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code}) during start-up:\n${output}`));
    });
  });
  return { child, port, adminKey, output: () => output, pipesClosed, exited };
}

/** The platform's processes under `root`, checked to hold the bin, the launcher, the API and both workers. */
function platformTree(root: number): Proc[] {
  const tree = processTree(root);
  started.push(...tree);
  const find = (what: string, re: RegExp) => {
    const found = tree.filter((p) => re.test(p.cmd));
    assert.ok(found.length > 0, `no ${what} in the tree:\n${tree.map((p) => `${p.pid} ${p.cmd}`).join('\n')}`);
    return found;
  };
  find('bin', /apps\/launcher\/bin\/switchyard\.mjs/);
  find('launcher', /dist\/apps\/launcher\/src\/main\.js/);
  find('API', /dist\/apps\/api\/src\/main\.js/);
  assert.equal(find('worker', /dist\/apps\/gpu-worker\/src\/main\.js/).length, 2);
  return tree;
}

/** Waits (on /proc) until none of `tree` runs, or STOP_LIMIT_MS after `since`; returns those still running. */
async function survivors(tree: Proc[], since: number): Promise<string[]> {
  let left = tree.filter(isAlive);
  while (left.length > 0 && Date.now() < since + STOP_LIMIT_MS) {
    await new Promise((r) => setTimeout(r, 100));
    left = left.filter(isAlive);
  }
  return left.map((p) => `${p.pid} ${p.cmd}`);
}

/** `promise`, or a failure naming `what` once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

describe('launcher shutdown', () => {
  after(async () => {
    // whatever the tests did, nothing they started outlives them
    for (const p of started) if (isAlive(p)) process.kill(p.pid, 'SIGKILL');
    for (const c of starters) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const redis = new Redis(REDIS_URL);
    for (const prefix of prefixes) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length > 0) await redis.del(...keys);
      } while (cursor !== '0');
    }
    await redis.quit();
  });

  it('SIGTERM to npm start stops npm, the bin, the launcher, the API and the workers, none killed', async (t) => {
    const keepAlive = new Agent({ keepAlive: true });
    t.after(() => keepAlive.destroy());
    const platform = await startPlatform('npm', ['start', '--silent', '--']);
    // A stream in flight, far longer than the drain: the API stays up to end it. The connection is kept alive, as a
    // client's or a load balancer's is: the stopping API closes it once the stream has ended.
    const stream = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: platform.port,
          path: '/generate_stream',
          method: 'POST',
          agent: keepAlive,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${platform.adminKey}` },
        },
        resolve,
      );
      req.on('error', reject);
      req.end(JSON.stringify({ inputs: LONG_PROMPT, parameters: { max_new_tokens: 2000 } }));
    });
    assert.equal(stream.statusCode, 200);
    stream.setEncoding('utf8');
    const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<string, undefined>;
    let text = '';
    while ((text.match(/data:/g) ?? []).length < 3) text += (await chunks.next()).value as string;
    const tree = platformTree(platform.child.pid!);

    const signalled = Date.now();
    platform.child.kill('SIGTERM');
    for (;;) {
      const { value, done } = await chunks.next();
      if (done) break;
      text += value;
    }
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-1)!.slice('data:'.length)) as { error?: string; error_type?: string };
    assert.equal(last.error_type, 'generation', events.at(-1));
    assert.match(last.error!, /worker shut down/);
    const streamMs = Date.now() - signalled;
    assert.ok(streamMs >= DRAIN_MS - 100, `the stream ended ${streamMs} ms after SIGTERM, before the drain deadline`);

    const left = await survivors(tree, signalled);
    assert.deepEqual(left, [], `still running ${STOP_LIMIT_MS / 1000} s after SIGTERM:\n${platform.output()}`);
    t.diagnostic(`${tree.length} processes gone ${Date.now() - signalled} ms after SIGTERM`);
    await platform.pipesClosed;
    const output = platform.output();
    assert.match(output, /switchyard: SIGTERM: stopping/);
    assert.match(output, /switchyard: stopped\n/, 'the launcher stopped every child without killing one');
    assert.doesNotMatch(output, /killing it/);
  });

  it('SIGTERM to the bin: a worker that cannot stop is killed at --drain-timeout + 10 s, and the bin exits 1', async () => {
    const platform = await startPlatform(process.execPath, ['apps/launcher/bin/switchyard.mjs']);
    const tree = platformTree(platform.child.pid!);
    // a stopped process cannot handle SIGTERM: only SIGKILL ends it
    const worker = tree.find((p) => /gpu-worker\/src\/main\.js/.test(p.cmd))!;
    process.kill(worker.pid, 'SIGSTOP');

    const signalled = Date.now();
    platform.child.kill('SIGTERM');
    const code = await within(platform.exited, STOP_LIMIT_MS, `the bin's exit:\n${platform.output()}`);
    const exitMs = Date.now() - signalled;
    assert.equal(code, 1, platform.output());
    assert.ok(exitMs >= KILL_AFTER_MS && exitMs < KILL_AFTER_MS + 5000, `the bin exited ${exitMs} ms after SIGTERM`);
    assert.deepEqual(await survivors(tree, signalled), []);
    assert.match(platform.output(), /switchyard: the worker \d did not stop within 11 s: killing it/);
  });
});
