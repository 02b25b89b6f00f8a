/**
 * The worker's tiers on a real worker process: a model moved out for room is parked (its session kept) and comes
 * back without a load, with the golden outputs; a request's `keep_alive` of 0 unloads its model once idle and one of
 * -1 holds it through memory pressure; a load that fails leaves the budgets as they were.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SCHEDULER_CONFIG } from '@switchyard/batching';
import { estimateModelMemory, poolBytes } from '@switchyard/models';
import { generatedIds, modelSpec, Platform, waitFor } from './support/platform';
import { loadGoldens, modelDir } from './support/repo';

const cost = (name: string) =>
  poolBytes(estimateModelMemory(modelDir(name)), {
    totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
    prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
  });
/** One demo-small and one demo-tiny resident, not two demo-smalls. */
const DEVICE = String(
  cost('demo-small') + cost('demo-tiny') + Math.round((cost('demo-small') - cost('demo-tiny')) / 2),
);

describe('worker tiers: parking and keep_alive', () => {
  const platform = new Platform();
  const small = loadGoldens('demo-small');
  const a = modelSpec('small-a', modelDir('demo-small'));
  const b = modelSpec('small-b', modelDir('demo-small'));
  const broken = mkdtempSync(join(tmpdir(), 'switchyard-broken-'));

  before(async () => {
    writeFileSync(join(broken, 'config.json'), '{"model_type": "llama"}');
    await platform.startWorker('t1', ['--device-memory', DEVICE, '--host-memory', '1GiB', '--place-timeout', '300ms']);
  });
  after(async () => {
    await platform.close();
    rmSync(broken, { recursive: true, force: true });
  });

  const run = async (model: string, index: number, keepAliveMs?: number) => {
    const c = small.cases[index];
    const id = await platform.enqueue(
      model,
      c.prompt_ids,
      { maxNewTokens: small.max_new_tokens },
      0,
      undefined,
      keepAliveMs === undefined ? {} : { keepAliveMs },
    );
    return { ids: generatedIds(await platform.readStream(id)), golden: c.greedy_ids };
  };
  const stateOf = async (model: string) => (await platform.heartbeat('t1'))?.models.find((m) => m.id === model)?.state;

  it('parks the least recently used model for room, and brings it back with the golden outputs, without a load', async () => {
    await platform.sendCommand('t1', { type: 'load', spec: a, reason: 'request' });
    await platform.waitForLoaded('t1', 'small-a');
    const first = await run('small-a', 0);
    assert.deepEqual(first.ids, first.golden);
    await platform.sendCommand('t1', { type: 'load', spec: b, reason: 'request' });
    await platform.waitForLoaded('t1', 'small-b');
    await waitFor('small-a parked', async () => (await stateOf('small-a')) === 'parked');
    const beat = (await platform.heartbeat('t1'))!;
    assert.ok(
      (beat.memory.parked ?? 0) > 0 && (beat.memory.parked ?? 0) < cost('demo-small'),
      'parked: its weights only',
    );
    // a request for it waits in its queue until a load command brings it back (the API sends one)
    const pending = run('small-a', 1);
    await platform.sendCommand('t1', { type: 'load', spec: a, reason: 'request' });
    const second = await pending;
    assert.deepEqual(second.ids, second.golden);
    const loads = (await platform.events()).filter((e) => e.model === 'small-a' && e.type === 'loaded');
    assert.deepEqual(
      loads.map((e) => e.tier).sort(),
      ['disk', 'parked'],
      'one load from disk, one from the parked tier',
    );
    await waitFor('small-b parked in turn', async () => (await stateOf('small-b')) === 'parked');
  });

  it('a request with keep_alive 0 unloads its model once it is idle', async () => {
    const tiny = modelSpec('tiny-k', modelDir('demo-tiny'));
    await platform.sendCommand('t1', { type: 'load', spec: tiny, reason: 'request' });
    await platform.waitForLoaded('t1', 'tiny-k');
    const c = loadGoldens('demo-tiny').cases[0];
    const id = await platform.enqueue('tiny-k', c.prompt_ids, { maxNewTokens: 4 }, 0, undefined, { keepAliveMs: 0 });
    assert.equal(generatedIds(await platform.readStream(id)).length, 4);
    const evicted = await waitFor('tiny-k unloaded', async () =>
      (await platform.events()).find((e) => e.model === 'tiny-k' && e.type === 'evicted'),
    );
    assert.equal(evicted.reason, 'keep_alive');
    assert.ok(!(await platform.events()).some((e) => e.model === 'tiny-k' && e.type === 'parked'), 'not parked');
    await waitFor('a heartbeat without tiny-k', async () => (await stateOf('tiny-k')) === undefined);
  });

  it('a request with keep_alive -1 holds its model through memory pressure, until a later request lets go', async () => {
    // small-a resident and held; small-b (parked) cannot come back beside it
    await platform.sendCommand('t1', { type: 'load', spec: a, reason: 'request' });
    await platform.waitForLoaded('t1', 'small-a');
    const held = await run('small-a', 2, -1);
    assert.deepEqual(held.ids, held.golden);
    const failuresBefore = (await platform.events()).filter(
      (e) => e.model === 'small-b' && e.type === 'load_failed',
    ).length;
    await platform.sendCommand('t1', { type: 'load', spec: b, reason: 'request' });
    const failure = await waitFor('small-b refused', async () => {
      const failures = (await platform.events()).filter((e) => e.model === 'small-b' && e.type === 'load_failed');
      return failures.length > failuresBefore ? failures[0] : undefined;
    });
    assert.match(failure.error ?? '', /cannot place/);
    assert.equal(await stateOf('small-a'), 'loaded');
    // the last request's keep_alive wins: with a duration, small-a may be parked for room again
    await run('small-a', 3, 60_000);
    await platform.sendCommand('t1', { type: 'load', spec: b, reason: 'request' });
    await platform.waitForLoaded('t1', 'small-b');
    await waitFor('small-a parked', async () => (await stateOf('small-a')) === 'parked');
  });

  it('a load that fails leaves the budgets as they were', async () => {
    const before = (await platform.heartbeat('t1'))!.memory;
    await platform.sendCommand('t1', { type: 'load', spec: modelSpec('broken', broken), reason: 'request' });
    await waitFor('the broken load to fail', async () =>
      (await platform.events()).some((e) => e.model === 'broken' && e.type === 'load_failed'),
    );
    const beat = await waitFor('a heartbeat after the failure', async () => {
      const now = await platform.heartbeat('t1');
      return now && !now.models.some((m) => m.id === 'broken') ? now : undefined;
    });
    assert.deepEqual(
      [beat.memory.used, beat.memory.parked],
      [before.used, before.parked],
      'no reservation is left behind on either tier',
    );
  });
});
