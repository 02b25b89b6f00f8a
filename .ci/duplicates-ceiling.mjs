#!/usr/bin/env node
// The duplicates ceiling: at most MAX pairs of repeated code in apps/, libs/ and bench/ (the `duplicates` tool's
// rows, less those it marks boilerplate), and none between two apps, which would mean one should be a lib.
// `duplicates` comes with the developers' machines; where it is missing the check says so and passes.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

/** The 1-based lines of a file that belong to import statements (a multi-line one included). */
function importLines(path) {
  const lines = readFileSync(path, 'utf8').split('\n');
  const inImport = new Set();
  for (let i = 0; i < lines.length; i++) {
    if (!/^import\b/.test(lines[i])) continue;
    let j = i;
    while (j < lines.length - 1 && !/(from\s+)?['"][^'"]+['"];?\s*$/.test(lines[j])) j++;
    for (let k = i; k <= j; k++) inImport.add(k + 1);
    i = j;
  }
  return inImport;
}

/** The tool passes over import lines but not the names of a multi-line import: such a pair is no repetition. */
function onlyImports(path, from, to) {
  const imports = importLines(path);
  for (let n = from; n <= to; n++) if (!imports.has(n)) return false;
  return true;
}

const rows = out
  .split('\n')
  .map((line) => ({ line, m: /^D\d+ (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)/.exec(line) }))
  .filter(({ line, m }) => m && AREAS.test(m[1]) && AREAS.test(m[4]) && !/\bboilerplate\b/.test(line))
  .filter(({ m }) => !(onlyImports(m[1], +m[2], +m[3]) && onlyImports(m[4], +m[5], +m[6])))
  .map(({ line, m }) => ({ line, m: [m[0], m[1], m[4]] }));
const app = (path) => /^apps\/([^/]+)\//.exec(path)?.[1];
const crossApp = rows.filter(({ m }) => app(m[1]) && app(m[2]) && app(m[1]) !== app(m[2]));
for (const { line } of rows) console.log(line);
console.log(`${rows.length} pairs in apps/, libs/ and bench/ (ceiling ${MAX}), ${crossApp.length} between two apps`);
if (rows.length > MAX || crossApp.length > 0) process.exit(1);
