/**
 * `--help` of the compiled launcher, API, worker and `switchyard convert`: each prints every flag it takes from its
 * flag table (libs/config/src/flags.ts; convert's, convert-config.ts) with its default, and exits 0 without starting
 * anything.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONVERT_FLAGS, Flag, FLAGS, flagsOf, ProcessName } from '@switchyard/config';
import { REPO_ROOT } from './support/repo';

/** Each process's compiled entry point, and the table its flags come from. */
const MAINS: Record<ProcessName, [string, Record<string, Flag>]> = {
  launcher: ['dist/apps/launcher/src/main.js', FLAGS],
  api: ['dist/apps/api/src/main.js', FLAGS],
  worker: ['dist/apps/gpu-worker/src/main.js', FLAGS],
  convert: ['dist/apps/launcher/src/convert.js', CONVERT_FLAGS],
};

describe('--help', () => {
  for (const [process, [main, table]] of Object.entries(MAINS) as [ProcessName, [string, Record<string, Flag>]][]) {
    it(`the ${process} lists every flag it takes, with its default`, () => {
      const out = execFileSync(globalThis.process.execPath, [join(REPO_ROOT, main), '--help'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      const lines = out.split('\n');
      for (const [name, f] of flagsOf(table, process)) {
        const line = lines.find((l) => l.startsWith(`  --${name} `) || l === `  --${name}`);
        assert.ok(line, `${process} --help lacks --${name}:\n${out}`);
        assert.ok(line.includes(`default: ${f.defaultHelp ?? (f.default || '(none)')}`), line);
      }
    });
  }
});
