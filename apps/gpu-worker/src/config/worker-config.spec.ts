import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseDuration, readWorkerConfig } from './worker-config';

describe('readWorkerConfig', () => {
  it('has working defaults', () => {
    const config = readWorkerConfig([], {}, '/srv');
    assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
    assert.equal(config.redisPrefix, 'sy:');
    assert.equal(config.deviceMemory, 2 * 1024 ** 3);
    assert.equal(config.keepAliveMs, 5 * 60_000);
    assert.equal(config.scheduler.maxBatchSize, 64);
    assert.match(config.workerId, /-\d+$/);
    assert.deepEqual(config.preload, []);
    assert.equal(config.fuseAttention, true);
    assert.equal(readWorkerConfig(['--attention', 'export'], {}).fuseAttention, false);
    assert.equal(config.intraOpSpin, false);
    assert.equal(readWorkerConfig(['--intra-op-spin', 'true'], {}).intraOpSpin, true);
    assert.equal(readWorkerConfig(['--intra-op-spin', 'true'], {}).intraOpSpinUs, null);
    const bounded = readWorkerConfig(['--intra-op-spin', '50us'], {});
    assert.deepEqual([bounded.intraOpSpin, bounded.intraOpSpinUs], [true, 50]);
    assert.equal(readWorkerConfig([], { SWITCHYARD_INTRA_OP_SPIN: '1.5ms' }).intraOpSpinUs, 1500);
    for (const bad of ['yes', '0us', '20', '2s'])
      assert.throws(() => readWorkerConfig(['--intra-op-spin', bad], {}), /--intra-op-spin must be/);
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

describe('parseDuration', () => {
  it('reads ms, s, m and h, and bare seconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('2'), 2000);
    assert.equal(parseDuration('5 minutes'), null);
  });
});
