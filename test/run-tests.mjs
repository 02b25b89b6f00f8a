#!/usr/bin/env node
// Runs every compiled spec (unit specs beside the code, end-to-end specs in test/) with node's test runner,
// one file at a time: the tests load real models and share two cores. Prints the runner's own summary and
// then one line "N passed, N failed" for CI. Arguments filter the files by substring.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');

function findSpecs(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findSpecs(path));
    else if (/\.(e2e-)?spec\.js$/.test(entry.name)) found.push(path);
  }
  return found;
}

let specs;
try {
  // a compiled spec whose source is gone (deleted or renamed since the last build) is stale: skip it
  specs = findSpecs(dist)
    .filter((s) => existsSync(join(root, relative(dist, s)).replace(/\.js$/, '.ts')))
    .sort();
} catch {
  console.error('dist/ is missing: run "npm run build" first (npm test does).');
  process.exit(2);
}
const filters = process.argv.slice(2);
if (filters.length > 0) specs = specs.filter((s) => filters.some((f) => relative(root, s).includes(f)));
if (specs.length === 0) {
  console.error(`no spec files found under dist/${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(2);
}

const tapDir = mkdtempSync(join(tmpdir(), 'switchyard-tap-'));
const tapFile = join(tapDir, 'results.tap');
const args = [
  '--test',
  '--test-concurrency=1',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...specs,
];
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
const forward = (signal) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
child.on('exit', (code, signal) => {
  let passed, failed;
  try {
    const tap = readFileSync(tapFile, 'utf8');
    passed = Number(/^# pass (\d+)$/m.exec(tap)?.[1] ?? 0);
    failed = Number(/^# fail (\d+)$/m.exec(tap)?.[1] ?? 0) + Number(/^# cancelled (\d+)$/m.exec(tap)?.[1] ?? 0);
  } catch {
    // no TAP file: the runner itself died before reporting
    passed = 0;
    failed = 1;
  }
  rmSync(tapDir, { recursive: true, force: true });
  // A suite that times out, or a hook that throws, fails the run without failing a test: count it.
  if (failed === 0 && (code !== 0 || signal)) {
    failed = 1;
    console.log('\na suite, a hook or the runner itself failed: see the output above');
  }
  console.log(`\n${passed} passed, ${failed} failed`);
  process.exit(code ?? (signal ? 1 : 0));
});
