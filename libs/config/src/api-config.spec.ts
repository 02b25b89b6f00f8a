import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_USAGE, readApiConfig } from './api-config';
import { ConfigError } from './config-error';
import { apiUrl, isLoopback } from './flag-values';

describe('readApiConfig', () => {
  it('has TGI defaults, and names the default model after its directory', () => {
    const config = readApiConfig([], {}, '/srv');
    assert.equal(config.port, 8080);
    assert.equal(config.modelDir, '/srv/models/demo-small');
    assert.equal(config.modelName, 'demo-small');
    assert.equal(config.maxConcurrentRequests, 128);
    assert.equal(config.maxBestOf, 2);
    assert.equal(config.maxStopSequences, 4);
    assert.equal(config.maxTopNTokens, 5);
    assert.equal(config.numWorkers, 1);
    assert.equal(config.disableAuth, false);
    assert.equal(config.maxInputTokens, null);
  });

  it('reads flags, their TGI aliases and SWITCHYARD_* variables, and hands worker flags on', () => {
    const config = readApiConfig(
      ['--model-id', 'models/demo-tiny', '--model-name', 'tiny', '--max-input-length', '100', '--disable-auth'],
      { SWITCHYARD_MAX_BATCH_SIZE: '8', SWITCHYARD_NUM_WORKERS: '2' },
      '/srv',
    );
    assert.equal(config.modelName, 'tiny');
    assert.equal(config.maxInputTokens, 100);
    assert.equal(config.numWorkers, 2);
    assert.equal(config.disableAuth, true);
    assert.ok(config.workerArgs.includes('--max-batch-size=8'));
    assert.equal(readApiConfig(['--quantize', 'Q4'], {}).quantize, 'q4');
    assert.ok(readApiConfig(['--quantize', 'q8'], {}).workerArgs.includes('--quantize=q8'), 'workers quantize alike');
    assert.ok(config.workerArgs.some((a) => a.startsWith('--redis-url=')));
  });

  it('refuses a bad value with a message that names the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--bogus', '1'], /--bogus/],
      [['--port', '99999'], /--port must be a port number/],
      [['--max-concurrent-requests', '0'], /--max-concurrent-requests/],
      [['--max-input-tokens', '600', '--max-total-tokens', '512'], /--max-input-tokens/],
      [['--model-name', 'has space'], /--model-name/],
      [['--quantize', 'awq'], /--quantize "awq" is one of TGI's methods .* q8 or q4/],
      [['--quantize', 'q3'], /--quantize "q3" is not a quantization: use none, q8 or q4/],
      [['--redis-url', 'localhost'], /--redis-url/],
    ];
    for (const [argv, message] of cases) {
      assert.throws(
        () => readApiConfig(argv, {}),
        (err: unknown) => err instanceof ConfigError && message.test(err.message),
        argv.join(' '),
      );
    }
    assert.throws(() => readApiConfig([], { SWITCHYARD_PORT: 'http' }), /--port must be a port number/);
  });

  it('refuses --disable-auth on a public interface unless it is acknowledged', () => {
    for (const hostname of ['0.0.0.0', '::', '10.0.0.5', 'example.com']) {
      assert.throws(
        () => readApiConfig(['--disable-auth', '--hostname', hostname], {}),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.includes(`--disable-auth with --hostname ${hostname}`) &&
          err.message.includes('--disable-auth-on-public-interface'),
        hostname,
      );
      assert.throws(
        () => readApiConfig([], { SWITCHYARD_DISABLE_AUTH: 'true', SWITCHYARD_HOSTNAME: hostname }),
        ConfigError,
      );
      const acknowledged = readApiConfig(
        ['--disable-auth', '--hostname', hostname, '--disable-auth-on-public-interface'],
        {},
      );
      assert.equal(acknowledged.disableAuth, true);
      const byEnv = readApiConfig(['--disable-auth', '--hostname', hostname], {
        SWITCHYARD_DISABLE_AUTH_ON_PUBLIC_INTERFACE: 'true',
      });
      assert.equal(byEnv.disableAuth, true);
      assert.equal(readApiConfig(['--hostname', hostname], {}).disableAuth, false, 'keys on: any interface');
    }
    for (const hostname of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST']) {
      assert.equal(readApiConfig(['--disable-auth', '--hostname', hostname], {}).disableAuth, true, hostname);
    }
    assert.ok(API_USAGE.includes('--disable-auth-on-public-interface'), '--help lists the flag');
  });

  it('knows the loopback names', () => {
    assert.ok(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost'));
    assert.ok(!isLoopback('0.0.0.0') && !isLoopback('::') && !isLoopback('127.0.0.1.example.com'));
  });

  it("makes the API's URL from --hostname, an IPv6 address in brackets", () => {
    assert.equal(apiUrl('10.231.7.3', 8080), 'http://10.231.7.3:8080');
    assert.equal(apiUrl('localhost', 80), 'http://localhost:80');
    for (const host of ['::1', '[::1]']) assert.equal(apiUrl(host, 8080), 'http://[::1]:8080');
    assert.equal(new URL(apiUrl('fd00::3', 8080)).hostname, '[fd00::3]');
  });
});
