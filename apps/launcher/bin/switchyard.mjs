#!/usr/bin/env node
// The entry point of `npm start` and the `switchyard` bin, in plain JavaScript so that it runs on a fresh clone:
// it installs the dependencies when they are missing or stale, builds, and hands over to the compiled launcher.
// SWITCHYARD_SKIP_BUILD=1 skips both (the tests set it: they build once, beforehand).
//
// Stopping: SIGTERM, SIGINT and SIGHUP go to the step that runs (the whole process group of `npm ci` or the build,
// which npm runs through a shell; the launcher, which stops the API and the workers). This process then exits with
// the launcher's status, or 128 + the signal's number when it stopped a step. Under `npm start`, npm forwards its
// SIGTERM to the shell it runs this through, which dies of it without passing it on: so this process also stops when
// its parent goes.
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../..', import.meta.url).pathname;
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** The step running now: its process, and whether it leads a process group of its own. */
let current = null;
/** The first signal received. */
let received = null;

function forward(signal) {
  if (!current || current.child.exitCode !== null || current.child.signalCode !== null) return;
  try {
    if (current.group) process.kill(-current.child.pid, signal);
    else current.child.kill(signal);
  } catch {
    // gone already
  }
}

function onSignal(signal) {
  received ??= signal;
  forward(signal);
}
for (const signal of SIGNALS) process.on(signal, onSignal);

if (process.env.npm_lifecycle_event) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    if (!received) console.error('switchyard: npm has stopped: stopping');
    onSignal('SIGTERM');
  }, 250).unref();
}

/** Runs a step to its end: resolves with its exit code, or the signal that ended it. */
function run(cmd, args, { cwd = root, group = false } = {}) {
  return new Promise((resolve) => {
    // a group of its own: a signal reaches what the step's shell started too (tsc under `sh -c` outlives its shell)
    const child = spawn(cmd, args, {
      cwd,
      stdio: group ? ['ignore', 'inherit', 'inherit'] : 'inherit',
      detached: group,
    });
    current = { child, group };
    child.on('error', (err) => {
      console.error(`switchyard: cannot run ${cmd}: ${err.message}`);
      resolve({ code: 1, signal: null });
    });
    child.on('exit', (code, signal) => resolve({ code, signal }));
    // a signal that came before the step started
    if (received) forward(received);
  });
}

const statusOf = ({ code, signal }) => code ?? 128 + (constants.signals[signal] ?? 0);

async function step(cmd, args) {
  const result = await run(cmd, args, { group: true });
  if (received) process.exit(128 + constants.signals[received]);
  if (result.code !== 0) {
    console.error(`switchyard: "${cmd} ${args.join(' ')}" failed (exit ${result.code ?? result.signal})`);
    process.exit(1);
  }
}

if (process.env.SWITCHYARD_SKIP_BUILD !== '1') {
  const installed = join(root, 'node_modules', '.package-lock.json');
  const lock = join(root, 'package-lock.json');
  if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
    console.log('switchyard: installing dependencies (npm ci)...');
    await step('npm', ['ci', '--no-audit', '--no-fund']);
  }
  console.log('switchyard: building...');
  await step('npm', ['run', 'build', '--silent']);
}
if (received) process.exit(128 + constants.signals[received]);

// `switchyard convert ...` prepares a model directory; anything else starts the platform
const [command, ...rest] = process.argv.slice(2);
const entry = command === 'convert' ? 'convert.js' : 'main.js';
const args = command === 'convert' ? rest : process.argv.slice(2);
const launcher = join(root, 'dist', 'apps', 'launcher', 'src', entry);
// the launcher resolves its default model from the repository; convert's paths are the caller's
const result = await run(process.execPath, [launcher, ...args], {
  cwd: command === 'convert' ? process.cwd() : root,
});
process.exit(statusOf(result));
