/**
 * The worker flags the launcher accepts reach its workers: what `npm start -- --flag value` sets is what each
 * worker reads from the argv the launcher builds (`ApiConfig.workerArgs`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readWorkerConfig } from './worker-config';
import { readApiConfig } from './api-config';

describe('worker flags through the launcher', () => {
  it('hands --drain-timeout to the workers, from the flag or its variable', () => {
    const fromFlag = readApiConfig(['--drain-timeout', '10s'], {});
    assert.ok(fromFlag.workerArgs.includes('--drain-timeout=10s'));
    // the worker is started with an empty environment here: the flag alone must carry it
    assert.equal(readWorkerConfig(fromFlag.workerArgs, {}).drainTimeoutMs, 10_000);
    const fromEnv = readApiConfig([], { SWITCHYARD_DRAIN_TIMEOUT: '2500ms' });
    assert.equal(readWorkerConfig(fromEnv.workerArgs, {}).drainTimeoutMs, 2_500);
    assert.equal(readWorkerConfig(readApiConfig([], {}).workerArgs, {}).drainTimeoutMs, 30_000);
  });

  it('every flag the launcher hands on is one the worker accepts', () => {
    // readWorkerConfig is strict: an argument it does not know throws
    assert.doesNotThrow(() => readWorkerConfig(readApiConfig([], {}).workerArgs, {}));
  });
});
