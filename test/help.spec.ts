/**
 * `--help` of the compiled launcher, API and worker: each prints every flag it takes from the flag table
 * (libs/config/src/flags.ts) with its default, and exits 0 without starting anything.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FLAGS, flagsOf, ProcessName } from '@switchyard/config';
import { REPO_ROOT } from './support/repo';

const MAINS: Record<ProcessName, string> = {
  launcher: 'dist/apps/launcher/src/main.js',
  api: 'dist/apps/api/src/main.js',
  worker: 'dist/apps/gpu-worker/src/main.js',
};

describe('--help', () => {
  for (const [process, main] of Object.entries(MAINS) as [ProcessName, string][]) {
    it(`the ${process} lists every flag it takes, with its default`, () => {
      const out = execFileSync(globalThis.process.execPath, [join(REPO_ROOT, main), '--help'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 30_000,
      });
      const lines = out.split('\n');
      for (const [name, f] of flagsOf(FLAGS, process)) {
        const line = lines.find((l) => l.startsWith(`  --${name} `) || l === `  --${name}`);
        assert.ok(line, `${process} --help lacks --${name}:\n${out}`);
        assert.ok(line.includes(`default: ${f.defaultHelp ?? (f.default || '(none)')}`), line);
      }
    });
  }

  it('switchyard convert --help describes the conversion', () => {
    const out = execFileSync(process.execPath, [join(REPO_ROOT, 'dist/apps/launcher/src/convert.js'), '--help'], {
      encoding: 'utf8',
    });
    assert.match(out, /Usage: switchyard convert/);
  });
});
