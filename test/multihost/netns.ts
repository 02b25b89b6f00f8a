/**
 * Hosts made of Linux network namespaces, for the multi-host test: a hub namespace holding a bridge, and one
 * namespace per host joined to it by a veth pair, each with its own address on a private /24 (10.231.7.0/24),
 * plus a veth from this (the root) namespace so the test process reaches them. Each host's loopback is up and
 * empty: a component that reached for 127.0.0.1 would find nothing there. Processes run in a host through
 * `ip netns exec`.
 *
 * Needs root. Everything made is named `sy-mh-*` (namespaces, the root veth) or lies under a temporary directory
 * `switchyard-multihost-*`; one run at a time on a machine holds a lock file, and a run that finds the lock's owner
 * dead removes what it left (a crashed run) before it starts. `destroy` (also run on exit and on SIGINT/SIGTERM)
 * kills every process in the namespaces and deletes them.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SUBNET = '10.231.7';
const PREFIX = 'sy-mh-';
const HUB = `${PREFIX}hub`;
const ROOT_VETH = `${PREFIX}root`;
const ROOT_ADDRESS = `${SUBNET}.1`;
const LOCK = join(tmpdir(), 'switchyard-multihost.lock');
const TMP_PREFIX = 'switchyard-multihost-';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quietly(run: () => unknown): void {
  try {
    run();
  } catch {
    // already gone
  }
}

/** Why this machine cannot run the test (not root, or no network namespaces), or null when it can. */
export function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces and veth pairs)';
  const probe = `sy-probe-${process.pid}`;
  try {
    ip('netns', 'add', probe);
    ip('-n', probe, 'link', 'set', 'lo', 'up');
    return null;
  } catch (err) {
    return `ip netns does not work here: ${String((err as { stderr?: string }).stderr ?? err).trim()}`;
  } finally {
    quietly(() => ip('netns', 'del', probe));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process in the namespace, then deletes it (its veth ends go with it). */
function removeNamespace(ns: string): void {
  let pids: number[] = [];
  quietly(() => (pids = ip('netns', 'pids', ns).split(/\s+/).filter(Boolean).map(Number)));
  for (const pid of pids) quietly(() => process.kill(pid, 'SIGKILL'));
  quietly(() => ip('netns', 'del', ns));
}

/** Everything a run of this test leaves: its namespaces, the root veth, its temporary directories. */
function removeAll(): void {
  let names: string[] = [];
  quietly(
    () =>
      (names = ip('netns', 'list')
        .split('\n')
        .map((l) => l.split(' ')[0])),
  );
  // hosts first, the hub last: a host's processes die before its link to the others goes
  for (const ns of names.filter((n) => n.startsWith(PREFIX) && n !== HUB)) removeNamespace(ns);
  if (names.includes(HUB)) removeNamespace(HUB);
  quietly(() => ip('link', 'del', ROOT_VETH));
  for (const entry of readdirSync(tmpdir())) {
    if (entry.startsWith(TMP_PREFIX)) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** Takes the machine-wide lock, waiting for a live owner; a dead owner's leftovers are removed. */
async function lock(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(LOCK, 'utf8').trim());
    if (!owner || !alive(owner)) {
      console.log(`multihost: removing the lock of a run that ended without its clean-up (pid ${owner})`);
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`another multi-host run (pid ${owner}) holds ${LOCK}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // we hold the lock: whatever is left is a crashed run's
  removeAll();
}

export interface HostProcess {
  child: ChildProcess;
  /** Everything it printed. */
  output(): string;
  /** Resolves with its exit code or signal once it has exited. */
  exited: Promise<number | string>;
}

export class Hosts {
  /** A directory of this run's own, removed with the hosts. */
  readonly dir: string;
  private readonly hosts = new Map<string, string>();
  private readonly processes: HostProcess[] = [];
  private destroyed = false;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.destroy();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  };
  private readonly onExit = () => this.destroy();

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), TMP_PREFIX));
    process.on('exit', this.onExit);
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** Takes the lock, removes a crashed run's leftovers, and makes the hub and the root namespace's link to it. */
  static async create(): Promise<Hosts> {
    await lock(10 * 60_000);
    const hosts = new Hosts();
    try {
      ip('netns', 'add', HUB);
      ip('-n', HUB, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', HUB, 'link', 'set', 'br0', 'up');
      ip('link', 'add', ROOT_VETH, 'type', 'veth', 'peer', 'name', 'h-root', 'netns', HUB);
      ip('-n', HUB, 'link', 'set', 'h-root', 'master', 'br0', 'up');
      ip('addr', 'add', `${ROOT_ADDRESS}/24`, 'dev', ROOT_VETH);
      ip('link', 'set', ROOT_VETH, 'up');
    } catch (err) {
      hosts.destroy();
      throw err;
    }
    return hosts;
  }

  /** A host: namespace `sy-mh-<name>` with `eth0` at 10.231.7.<octet> on the hub's bridge. Returns its address. */
  add(name: string, octet: number): string {
    const ns = `${PREFIX}${name}`;
    const address = `${SUBNET}.${octet}`;
    ip('netns', 'add', ns);
    this.hosts.set(name, ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', HUB, 'link', 'add', `h-${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('-n', HUB, 'link', 'set', `h-${name}`, 'master', 'br0', 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    return address;
  }

  /** Runs `command` on host `name` and waits for it; its output, or an error with it. */
  execIn(name: string, command: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.ns(name), ...command], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }

  /** Starts `command` on host `name` (`ip netns exec` execs it: the child is the process itself). */
  spawnIn(name: string, command: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): HostProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(name), ...command], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    const started: HostProcess = { child, output: () => output, exited };
    this.processes.push(started);
    return started;
  }

  /** A host lost: every process on it SIGKILLed and its namespace deleted, its link to the others with it. */
  remove(name: string): void {
    removeNamespace(this.ns(name));
    this.hosts.delete(name);
  }

  /** Pids of the processes on host `name`. */
  pids(name: string): number[] {
    return ip('netns', 'pids', this.ns(name)).split(/\s+/).filter(Boolean).map(Number);
  }

  /** Kills everything, deletes the namespaces, the root veth and the directory, and releases the lock. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.processes) if (p.child.exitCode === null) quietly(() => p.child.kill('SIGKILL'));
    removeAll();
    rmSync(LOCK, { force: true });
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }

  private ns(name: string): string {
    const ns = this.hosts.get(name);
    if (!ns) throw new Error(`no host ${name}`);
    return ns;
  }
}
