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

const launcher = join(root, 'dist', 'apps', 'api', 'src', 'launcher', 'main.js');
const child = spawnSync(process.execPath, [launcher, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(child.status ?? 1);
