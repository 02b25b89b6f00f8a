/**
 * The flag table is the one source of every process's flags: each process's --help lists every flag it takes,
 * with its variable and default, and a process refuses the flags it does not take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_USAGE, LAUNCHER_USAGE, readApiConfig } from './api-config';
import { ConfigError } from './config-error';
import { CONVERT_FLAGS, CONVERT_USAGE, readConvertConfig } from './convert-config';
import { envVariable, Flag, flagsOf, ProcessName } from './flag-table';
import { FLAGS } from './flags';
import { readWorkerConfig, WORKER_USAGE } from './worker-config';

/** Each process's --help, and the table its flags come from. */
const USAGE: Record<ProcessName, [string, Record<string, Flag>]> = {
  launcher: [LAUNCHER_USAGE, FLAGS],
  api: [API_USAGE, FLAGS],
  worker: [WORKER_USAGE, FLAGS],
  convert: [CONVERT_USAGE, CONVERT_FLAGS],
};

/** The --help line of `--name`, which shows its variable and default. */
function helpLine(usage: string, name: string): string | undefined {
  return usage.split('\n').find((l) => new RegExp(`^  --${name}( <value>)?(  |$)`).test(l));
}

describe('the flag table', () => {
  it('lists every flag of each process in its --help, with its variable and default', () => {
    for (const [process, [usage, table]] of Object.entries(USAGE) as [ProcessName, [string, Record<string, Flag>]][]) {
      const flags = flagsOf(table, process);
      assert.ok(flags.length >= 5, process);
      for (const [name, f] of flags) {
        const line = helpLine(usage, name);
        assert.ok(line, `${process} --help lacks --${name}`);
        const variable = envVariable(name, f);
        if (variable) assert.ok(line.includes(`[${variable}]`), `${process} --help: ${line}`);
        else assert.ok(!line.includes('[SWITCHYARD_'), `${process} --help: ${line}`);
        const shown = f.defaultHelp ?? (f.default === '' ? '(none)' : f.default);
        assert.ok(line.endsWith(`default: ${shown}`), `${process} --help: ${line}`);
      }
      for (const [name] of Object.entries(table).filter(([, f]) => !f.processes.includes(process))) {
        assert.equal(helpLine(usage, name), undefined, `${process} --help lists --${name}, which it does not take`);
      }
    }
    assert.match(LAUNCHER_USAGE, /Also accepted\s+as --max-input-length/);
  });

  it('gives every flag a description, and a SWITCHYARD_ variable', () => {
    for (const [name, f] of Object.entries(FLAGS)) {
      assert.ok(f.description.length > 10, name);
      assert.equal(envVariable(name, f), `SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}`, name);
    }
  });

  it('takes in each process only the flags the table gives it', () => {
    assert.throws(() => readWorkerConfig(['--port', '80'], {}), ConfigError, 'a worker has no port');
    assert.throws(() => readApiConfig(['--preload', 'models/demo-tiny'], {}), ConfigError, 'the API preloads nothing');
    // what the launcher hands on, the worker reads with the same parser
    assert.throws(() => readApiConfig(['--execution-provider', 'tpu'], {}), /--execution-provider must be cpu or cuda/);
  });

  it("reads switchyard convert's flags, with its own messages", () => {
    const config = readConvertConfig(['--model-id', 'm', '--out', 'o', '--quantize', 'Q4'], '/srv');
    assert.deepEqual(config, {
      modelDir: '/srv/m',
      outDir: '/srv/o',
      quantize: 'q4',
      dtype: 'fp32',
      quantizeBlockSize: null,
    });
    const cases: [string[], RegExp][] = [
      [['--out', 'o', '--dtype', 'fp16'], /--model-id and --out are required/],
      [['--model-id', 'm', '--out', 'o'], /nothing to do: give --quantize q8 or q4, or --dtype fp16$/],
      [['--model-id', 'm', '--out', 'o', '--dtype', 'q8'], /--dtype must be fp32 or fp16, got "q8"$/],
      [['--model-id', 'm', '--out', 'o', '--quantize', 'awq'], /--quantize "awq" is one of TGI's methods/],
      [['--model-id', 'm', '--out', 'o', '--quantize', 'q4', '--quantize-block-size', '48'], /must be 16, 32, 64/],
      [['--model-id', 'm', '--port', '1'], /Unknown option '--port'/],
    ];
    for (const [argv, message] of cases) assert.throws(() => readConvertConfig(argv), message, argv.join(' '));
  });
});
