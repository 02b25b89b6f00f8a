/**
 * The launcher (`npm start`, the `switchyard` bin): validates every flag, runs the API's preparation step as a
 * process of its own (apps/api/src/prepare.main.ts: the model directory, the migrations, the registration of
 * `--model-id`, the first admin key), starts the API and `--num-workers` workers, and waits
 * until `/health` says a worker serves the default model. Ctrl-C (SIGINT), SIGTERM or SIGHUP stops everything: each
 * child gets SIGTERM (the workers drain within --drain-timeout), the launcher waits for all of them, kills any still
 * running --drain-timeout + 10 s later, and exits 0 (1 if it had to kill one). A child that dies during start-up, or
 * the API at any time, makes the launcher stop the others and exit non-zero; a worker that dies later is started
 * again.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { constants, hostname } from 'node:os';
import { join } from 'node:path';
import { ApiConfig, apiUrl, ConfigError, LAUNCHER_USAGE, readApiConfig, readWorkerConfig } from '@switchyard/config';

// The other apps' compiled entry points (paths, not imports: the launcher runs them as processes).
const API_MAIN = join(__dirname, '../../api/src/main.js');
const PREPARE_MAIN = join(__dirname, '../../api/src/prepare.main.js');
const WORKER_MAIN = join(__dirname, '../../gpu-worker/src/main.js');
const READY_TIMEOUT_MS = 120_000;
/** How long past --drain-timeout the children may take to stop before they are killed. */
const KILL_MARGIN_MS = 10_000;

function log(line: string): void {
  console.log(`switchyard: ${line}`);
}

interface Child {
  name: string;
  process: ChildProcess;
  /** Resolves once the process has exited (or could not start). */
  exited: Promise<void>;
}

function spawnChild(name: string, args: string[]): Child {
  const child = spawn(process.execPath, args, { stdio: 'inherit' });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return { name, process: child, exited };
}

function isRunning({ process: child }: Child): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/**
 * Waits for every child to exit; those still running after `killAfterMs` get SIGKILL. Resolves with the names of
 * the children it had to kill.
 */
async function awaitChildren(children: Child[], killAfterMs: number): Promise<string[]> {
  const killed: string[] = [];
  const timer = setTimeout(() => {
    for (const child of children) {
      if (!isRunning(child)) continue;
      log(`the ${child.name} did not stop within ${killAfterMs / 1000} s: killing it`);
      killed.push(child.name);
      child.process.kill('SIGKILL');
    }
  }, killAfterMs);
  await Promise.all(children.map((c) => c.exited));
  clearTimeout(timer);
  return killed;
}

async function waitForHealth(url: string, children: Child[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.process.exitCode !== null || child.process.signalCode !== null) {
        throw new Error(
          `the ${child.name} exited (${child.process.exitCode ?? child.process.signalCode}) during start-up`,
        );
      }
    }
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      if (body.error && body.error !== last) {
        last = body.error;
        log(`waiting: ${body.error}`);
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url}/health did not answer 200 within ${READY_TIMEOUT_MS / 1000} s${last ? `: ${last}` : ''}`);
}

/** The flags each worker gets: the shared ones, its id, and the default model to load at start. */
function workerArgv(config: ApiConfig, index: number): string[] {
  return [
    ...config.workerArgs,
    `--worker-id=${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}-w${index}`,
    // the default model is pinned: /health stays up however long it idles
    `--pin=${config.modelName}=${config.modelDir}`,
  ];
}

/**
 * Runs the API's preparation step (apps/api/src/prepare.main.ts: the model's fit, the migrations, its registration,
 * the first admin key) with the launcher's flags and waits for it. Its lines and its error go to the launcher's
 * output; a failure stops the launcher with the step's status. A signal meanwhile goes to the step, and the
 * launcher then exits as that signal's status.
 */
async function prepare(argv: string[]): Promise<void> {
  const step = spawnChild('preparation step', [PREPARE_MAIN, ...argv]);
  // a cast, not a type: TypeScript does not see the assignment in the handler, and would narrow it to null
  let received = null as NodeJS.Signals | null;
  const forward = (signal: NodeJS.Signals) => {
    received ??= signal;
    if (isRunning(step)) step.process.kill(signal);
  };
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const signal of signals) process.on(signal, forward);
  await step.exited;
  for (const signal of signals) process.off(signal, forward);
  if (received) process.exit(128 + constants.signals[received]);
  const { exitCode, signalCode } = step.process;
  if (exitCode === 0) return;
  // the step has printed why; a step that died of a signal could not
  if (exitCode === null) log(`the ${step.name} exited (${signalCode ?? 'could not start'})`);
  process.exit(exitCode || 1);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(LAUNCHER_USAGE);
    return;
  }
  const config = readApiConfig(argv, process.env);
  // every worker flag checked here, before anything starts
  const { drainTimeoutMs } = readWorkerConfig(workerArgv(config, 0), {});
  await prepare(argv);
  if (config.disableAuth) {
    log(
      'WARNING: --disable-auth: no API keys are checked; every route, admin included, is open to anyone who can reach the port',
    );
  }

  const children: Child[] = [spawnChild('API', [API_MAIN, ...argv])];
  let stopping = false;
  let ready = false;
  /** Stops every child, waits for them (killing the late ones) and exits. */
  const stop = (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log(`${reason}: stopping`);
    for (const child of children) if (isRunning(child)) child.process.kill('SIGTERM');
    void awaitChildren(children, drainTimeoutMs + KILL_MARGIN_MS).then((killed) => {
      log(killed.length > 0 ? `stopped (killed: ${killed.join(', ')})` : 'stopped');
      process.exit(killed.length > 0 ? 1 : code);
    });
  };
  /** Starts worker i; once the platform is up, a worker that dies is started again (at most 5 times a minute). */
  const restarts: number[] = [];
  const startWorker = (i: number, slot = children.length) => {
    const child = spawnChild(`worker ${i}`, [WORKER_MAIN, ...workerArgv(config, i)]);
    children[slot] = child;
    child.process.on('exit', (code, signal) => {
      if (stopping) return;
      if (!ready) return stop(`the ${child.name} exited (${signal ?? code}) during start-up`, 1);
      const now = Date.now();
      while (restarts.length > 0 && now - restarts[0] > 60_000) restarts.shift();
      if (restarts.length >= 5) return stop(`the ${child.name} exited (${signal ?? code}) 5 times in a minute`, 1);
      restarts.push(now);
      log(
        `the ${child.name} exited (${signal ?? code}): its running requests run again on another worker; restarting it`,
      );
      startWorker(i, slot);
    });
  };
  for (let i = 0; i < config.numWorkers; i++) startWorker(i);
  // SIGHUP too: the terminal closed, or the bin forwarded it; the default would leave the children running
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => stop(signal, 0));
  children[0].process.on('exit', (code, signal) => {
    if (!stopping) stop(`the API exited (${signal ?? code})`, 1);
  });

  const url = apiUrl(config.hostname, config.port);
  try {
    await waitForHealth(url, children);
  } catch (err) {
    stop((err as Error).message, 1);
    return;
  }
  if (stopping) return;
  ready = true;
  log(`ready: ${url}  ${config.numWorkers} worker(s), default model ${config.modelName}`);
  const auth = config.disableAuth ? '' : ` -H "Authorization: Bearer $SWITCHYARD_KEY"`;
  log(
    `try: curl ${url}/generate -X POST -d '{"inputs":"The future of AI is","parameters":{"max_new_tokens":50}}' -H 'Content-Type: application/json'${auth}`,
  );
}

main().catch((err: unknown) => {
  const known = err instanceof ConfigError;
  console.error(`switchyard: ${known ? err.message : String((err as Error)?.stack ?? err)}`);
  process.exit(1);
});
