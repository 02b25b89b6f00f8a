import assert from 'node:assert/strict';
import { availableMemoryBytes, defaultCacheDir } from '@switchyard/models';
import { describe, it } from 'node:test';
import { ConfigError } from './config-error';
import { spinsFor } from './flag-values';
import { readWorkerConfig } from './worker-config';

describe('readWorkerConfig', () => {
  it('has working defaults', () => {
    const config = readWorkerConfig([], {}, '/srv');
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.redisPrefix, 'sy:');
    // auto: a share of the host's available memory, read at boot
    const share = config.deviceMemory / availableMemoryBytes();
    assert.ok(share > 0.55 && share < 0.65, `--device-memory auto took ${share} of the available memory`);
    const host = config.hostMemory / availableMemoryBytes();
    assert.ok(host > 0.15 && host < 0.25, `--host-memory auto took ${host} of the available memory`);
    assert.equal(readWorkerConfig(['--host-memory', '0'], {}).hostMemory, 0, '0 turns parking off');
    assert.equal(readWorkerConfig(['--host-memory', '1GiB'], {}).hostMemory, 1024 ** 3);
    assert.throws(() => readWorkerConfig(['--host-memory', 'half'], {}), /--host-memory must be a size/);
    assert.equal(readWorkerConfig(['--execution-provider', 'cuda'], {}).deviceMemory, 8 * 1024 ** 3);
    assert.equal(config.quantize, 'none');
    assert.equal(config.dtype, 'auto');
    assert.equal(config.quantizeBlockSize, null);
    assert.equal(config.cacheDir, defaultCacheDir({}));
    assert.equal(config.keepAliveMs, 5 * 60_000);
    assert.equal(config.scheduler.maxBatchSize, 64);
    assert.match(config.workerId, /-\d+$/);
    assert.deepEqual(config.preload, []);
    assert.equal(config.fuseAttention, true);
    assert.equal(readWorkerConfig(['--attention', 'export'], {}).fuseAttention, false);
    assert.equal(config.intraOpSpin, 'auto');
    assert.equal(spinsFor('auto', 47e6), false, 'demo-small sleeps');
    assert.equal(spinsFor('auto', 500e6), true, 'a 500M-parameter model spins');
    assert.equal(spinsFor(false, 500e6), false);
    assert.equal(readWorkerConfig(['--intra-op-spin', 'false'], {}).intraOpSpin, false);
    assert.equal(readWorkerConfig(['--intra-op-spin', 'true'], {}).intraOpSpin, true);
    assert.equal(readWorkerConfig(['--intra-op-spin', 'true'], {}).intraOpSpinUs, null);
    const bounded = readWorkerConfig(['--intra-op-spin', '50us'], {});
    assert.deepEqual([bounded.intraOpSpin, bounded.intraOpSpinUs], [true, 50]);
    assert.equal(readWorkerConfig([], { SWITCHYARD_INTRA_OP_SPIN: '1.5ms' }).intraOpSpinUs, 1500);
    for (const bad of ['yes', '0us', '20', '2s'])
      assert.throws(() => readWorkerConfig(['--intra-op-spin', bad], {}), /--intra-op-spin must be/);
  });

  it('reads the quantization flags, and refuses what it cannot run', () => {
    const config = readWorkerConfig(
      ['--quantize', 'q4', '--dtype', 'fp16', '--quantize-block-size', '64', '--cache-dir', 'c'],
      {},
      '/srv',
    );
    assert.deepEqual(
      [config.quantize, config.dtype, config.quantizeBlockSize, config.cacheDir],
      ['q4', 'fp16', 64, '/srv/c'],
    );
    assert.equal(readWorkerConfig([], { SWITCHYARD_QUANTIZE: 'q8' }).quantize, 'q8');
    assert.equal(readWorkerConfig([], { XDG_CACHE_HOME: '/x' }).cacheDir, '/x/switchyard');
    const cases: [string[], RegExp][] = [
      [['--quantize', 'gptq'], /--quantize "gptq" is one of TGI's methods/],
      [['--quantize', 'int3'], /--quantize "int3" is not a quantization/],
      [['--dtype', 'bf16'], /--dtype must be auto, fp32, fp16, q8, q4, q4f16/],
      [['--quantize-block-size', '48'], /--quantize-block-size must be 16, 32, 64, 128 or 256/],
      [['--quantize-block-size', '512'], /--quantize-block-size must be 16, 32, 64, 128 or 256/],
      [['--device-memory', 'lots'], /--device-memory must be a size like 2GiB or 512MiB, or auto/],
    ];
    for (const [argv, message] of cases) assert.throws(() => readWorkerConfig(argv, {}), message, argv.join(' '));
  });

  it('reads flags before variables, and specs from --preload and --pin', () => {
    const config = readWorkerConfig(
      ['--device-memory', '512MiB', '--keep-alive=-1', '--pin', 'models/demo-tiny', '--preload', 'b=models/demo-small'],
      { SWITCHYARD_DEVICE_MEMORY: '1GiB', SWITCHYARD_MAX_BATCH_SIZE: '8', SWITCHYARD_WORKER_ID: 'gpu-0' },
      '/srv',
    );
    assert.equal(config.deviceMemory, 512 * 1024 ** 2);
    assert.equal(config.keepAliveMs, -1);
    assert.equal(readWorkerConfig(['--keep-alive', 'never'], {}).keepAliveMs, -1);
    assert.equal(config.scheduler.maxBatchSize, 8);
    assert.equal(config.workerId, 'gpu-0');
    assert.deepEqual(
      config.preload.map((s) => [s.id, s.path, s.pinned]),
      [
        ['b', '/srv/models/demo-small', false],
        ['demo-tiny', '/srv/models/demo-tiny', true],
      ],
    );
  });

  it('refuses a bad value with a message that names the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--device-memory', 'lots'], /--device-memory/],
      [['--keep-alive', 'soon'], /--keep-alive/],
      [['--execution-provider', 'tpu'], /--execution-provider/],
      [['--attention', 'fast'], /--attention/],
      [['--intra-op-spin', 'yes'], /--intra-op-spin/],
      [['--max-batch-size', '0'], /--max-batch-size/],
      [['--redis-url', 'http://x'], /--redis-url/],
      [['--redis-prefix', 'sy'], /--redis-prefix/],
      [['--worker-id', 'a:b'], /--worker-id/],
      [['--pin', 'bad:id=models/x'], /--pin/],
      [['--no-such-flag'], /no-such-flag/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(
        () => readWorkerConfig(argv, {}, '/srv'),
        (err: Error) => {
          assert.ok(err instanceof ConfigError, `${argv.join(' ')}: ${err.name}`);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });
});
