#!/usr/bin/env node
// The duplicates ceiling: at most MAX pairs of repeated code in apps/, libs/ and bench/ (the `duplicates` tool's
// rows, less those it marks boilerplate), and none between two apps, which would mean one should be a lib.
// `duplicates` comes with the developers' machines; where it is missing the check says so and passes.
import { execFileSync } from 'node:child_process';

const MAX = 8;
const AREAS = /^(apps|libs|bench)\//;

let out;
try {
  out = execFileSync('duplicates', ['--most', '200', '--seconds', '120'], { encoding: 'utf8' });
} catch (err) {
  if (err.code === 'ENOENT') {
    console.log('duplicates: not on this machine, ceiling not checked');
    process.exit(0);
  }
  throw err;
}
const incomplete = out.split('\n').find((l) => l.startsWith('incomplete:'));
if (incomplete) {
  console.error(`duplicates did not finish: ${incomplete}`);
  process.exit(1);
}
const rows = out
  .split('\n')
  .map((line) => ({ line, m: /^D\d+ (\S+):\d+-\d+ ~ (\S+):\d+-\d+/.exec(line) }))
  .filter(({ line, m }) => m && AREAS.test(m[1]) && AREAS.test(m[2]) && !/\bboilerplate\b/.test(line));
const app = (path) => /^apps\/([^/]+)\//.exec(path)?.[1];
const crossApp = rows.filter(({ m }) => app(m[1]) && app(m[2]) && app(m[1]) !== app(m[2]));
for (const { line } of rows) console.log(line);
console.log(`${rows.length} pairs in apps/, libs/ and bench/ (ceiling ${MAX}), ${crossApp.length} between two apps`);
if (rows.length > MAX || crossApp.length > 0) process.exit(1);
