#!/usr/bin/env node
// The entry point of `npm start` and the `switchyard` bin, in plain JavaScript so that it runs on a fresh clone:
// it installs the dependencies when they are missing or stale, builds, and hands over to the compiled launcher.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../..', import.meta.url).pathname;

function run(cmd, args) {
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`switchyard: "${cmd} ${args.join(' ')}" failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
}

const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.log('switchyard: installing dependencies (npm ci)...');
  run('npm', ['ci', '--no-audit', '--no-fund']);
}
console.log('switchyard: building...');
run('npm', ['run', 'build', '--silent']);

// `switchyard convert ...` prepares a model directory; anything else starts the platform
const [command, ...rest] = process.argv.slice(2);
const entry = command === 'convert' ? 'convert.js' : 'main.js';
const args = command === 'convert' ? rest : process.argv.slice(2);
const launcher = join(root, 'dist', 'apps', 'api', 'src', 'launcher', entry);
// the launcher resolves its default model from the repository; convert's paths are the caller's
const child = spawnSync(process.execPath, [launcher, ...args], {
  cwd: command === 'convert' ? process.cwd() : root,
  stdio: 'inherit',
});
process.exit(child.status ?? 1);
