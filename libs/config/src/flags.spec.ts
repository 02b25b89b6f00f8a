/**
 * The flag table is the one source of every process's flags: each process's --help lists every flag it takes,
 * with its variable and default, and a process refuses the flags it does not take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_USAGE, LAUNCHER_USAGE, readApiConfig } from './api-config';
import { ConfigError } from './config-error';
import { flagsOf, ProcessName } from './flag-table';
import { FLAGS } from './flags';
import { readWorkerConfig, WORKER_USAGE } from './worker-config';

const USAGE: Record<ProcessName, string> = { launcher: LAUNCHER_USAGE, api: API_USAGE, worker: WORKER_USAGE };

/** The --help line of `--name`, which shows its variable and default. */
function helpLine(usage: string, name: string): string | undefined {
  return usage.split('\n').find((l) => new RegExp(`^  --${name}( <value>)?(  |$)`).test(l));
}

describe('the flag table', () => {
  it('lists every flag of each process in its --help, with its variable and default', () => {
    for (const [process, usage] of Object.entries(USAGE) as [ProcessName, string][]) {
      const flags = flagsOf(FLAGS, process);
      assert.ok(flags.length > 10, process);
      for (const [name, f] of flags) {
        const line = helpLine(usage, name);
        assert.ok(line, `${process} --help lacks --${name}`);
        if (f.env) assert.ok(line.includes(`[${f.env}]`), `${process} --help: ${line}`);
        const shown = f.defaultHelp ?? (f.default === '' ? '(none)' : f.default);
        assert.ok(line.endsWith(`default: ${shown}`), `${process} --help: ${line}`);
      }
      for (const [name] of Object.entries(FLAGS).filter(([, f]) => !f.processes.includes(process))) {
        assert.equal(helpLine(usage, name), undefined, `${process} --help lists --${name}, which it does not take`);
      }
    }
    assert.match(LAUNCHER_USAGE, /Also accepted\s+as --max-input-length/);
  });

  it('gives every flag a description, and a SWITCHYARD_ variable', () => {
    for (const [name, f] of Object.entries(FLAGS)) {
      assert.ok(f.description.length > 10, name);
      assert.equal(f.env, `SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}`, name);
    }
  });

  it('takes in each process only the flags the table gives it', () => {
    assert.throws(() => readWorkerConfig(['--port', '80'], {}), ConfigError, 'a worker has no port');
    assert.throws(() => readApiConfig(['--preload', 'models/demo-tiny'], {}), ConfigError, 'the API preloads nothing');
    // what the launcher hands on, the worker reads with the same parser
    assert.throws(() => readApiConfig(['--execution-provider', 'tpu'], {}), /--execution-provider must be cpu or cuda/);
  });
});
