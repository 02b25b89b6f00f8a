/**
 * The model pool across real worker processes: LRU eviction under a device-memory budget, pinning, one load
 * at a time per model, placement on the worker with the most free memory, and the keep-alive.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SCHEDULER_CONFIG } from '@switchyard/batching';
import { randomUUID } from 'node:crypto';
import { ControlCommand, GENERATE_JOB_OPTIONS, GenerateJob, MetricsSnapshot, PoolEvent } from '@switchyard/protocol';
import { estimateModelMemory, poolBytes } from '@switchyard/models';
import { generatedIds, modelSpec, Platform, waitFor } from './support/platform';
import { loadGoldens, modelDir } from './support/repo';

/** What a worker budgets for a model with the default batch budgets (the same estimate the workers use). */
const cost = (name: string) =>
  poolBytes(estimateModelMemory(modelDir(name)), {
    totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
    prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
  });
/** Holds demo-tiny with one demo-small, not with two; and (on a worker without demo-tiny) one demo-small, not two. */
const BUDGET = String(
  cost('demo-tiny') + cost('demo-small') + Math.round((cost('demo-small') - cost('demo-tiny')) / 2),
);

/** Every load on one worker is followed by its end before the same model starts loading again. */
function assertNoDoubleLoads(events: PoolEvent[]): void {
  const loading = new Set<string>();
  for (const e of events) {
    const key = `${e.worker}/${e.model}`;
    if (e.type === 'load_started') {
      assert.ok(!loading.has(key), `${key} started loading while a load was running`);
      loading.add(key);
    } else if (e.type === 'loaded' || e.type === 'load_failed') {
      loading.delete(key);
    }
  }
}

function counterValue(snapshot: MetricsSnapshot, name: string, labels: Record<string, string>): number {
  const family = snapshot.find((f) => f.name === name);
  let total = 0;
  for (const s of family?.values ?? []) {
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

describe('worker pool: eviction, pinning and placement', () => {
  const platform = new Platform();
  const models = {
    'demo-tiny': { spec: modelSpec('demo-tiny', modelDir('demo-tiny'), true), goldens: loadGoldens('demo-tiny') },
    'demo-small': { spec: modelSpec('demo-small', modelDir('demo-small')), goldens: loadGoldens('demo-small') },
    'demo-small-b': { spec: modelSpec('demo-small-b', modelDir('demo-small')), goldens: loadGoldens('demo-small') },
  };

  before(async () => {
    await Promise.all([
      // no parked tier here: models moved out are unloaded (test/worker-tiers.e2e-spec.ts parks them)
      platform.startWorker('w1', ['--device-memory', BUDGET, '--host-memory', '0', '--pin', modelDir('demo-tiny')]),
      platform.startWorker('w2', ['--device-memory', BUDGET, '--host-memory', '0', '--place-timeout', '300ms']),
    ]);
    await platform.waitForLoaded('w1', 'demo-tiny');
  });
  after(() => platform.close());

  it('round-robin requests across three models on one worker evict the LRU model, never the pinned one', async () => {
    const order = ['demo-small', 'demo-small-b', 'demo-tiny', 'demo-small', 'demo-small-b', 'demo-tiny'] as const;
    for (const name of order) {
      const { spec, goldens } = models[name];
      // the same load three times at once: the pool must load it once
      await Promise.all([1, 2, 3].map(() => platform.sendCommand('w1', { type: 'load', spec, reason: 'request' })));
      await platform.waitForLoaded('w1', name);
      const cases = goldens.cases.slice(0, 4);
      const ids = await Promise.all(
        cases.map((c) => platform.enqueue(name, c.prompt_ids, { maxNewTokens: goldens.max_new_tokens })),
      );
      const streams = await Promise.all(ids.map((id) => platform.readStream(id)));
      streams.forEach((events, i) => assert.deepEqual(generatedIds(events), cases[i].greedy_ids, `${name} case ${i}`));
      const beat = (await platform.heartbeat('w1'))!;
      assert.ok(beat.memory.used <= beat.memory.budget, 'the pool stays within its budget');
    }
    const events = (await platform.events()).filter((e) => e.worker === 'w1');
    assertNoDoubleLoads(events);
    const evicted = events.filter((e) => e.type === 'evicted');
    assert.ok(evicted.length >= 3, `expected evictions, saw ${JSON.stringify(evicted)}`);
    assert.ok(
      evicted.every((e) => e.model !== 'demo-tiny'),
      'the pinned model was evicted',
    );
    assert.ok(evicted.every((e) => e.reason === 'lru'));
    assert.equal(events.filter((e) => e.type === 'loaded' && e.model === 'demo-tiny').length, 1);

    const families = await waitFor('eviction metrics', async () => {
      const snapshot = await platform.metrics('w1');
      return snapshot &&
        counterValue(snapshot, 'switchyard_model_evictions_total', { reason: 'lru' }) === evicted.length
        ? snapshot
        : undefined;
    });
    assert.equal(
      counterValue(families, 'switchyard_model_loads_total', {}),
      events.filter((e) => e.type === 'loaded').length,
    );
  });

  it('places loads from the control queue on the worker with the most free memory, replicas elsewhere', async () => {
    const w1 = (await platform.heartbeat('w1'))!;
    const w2 = (await platform.heartbeat('w2'))!;
    assert.ok(w2.memory.budget - w2.memory.used > w1.memory.budget - w1.memory.used);
    assert.ok(
      w1.models.some((m) => m.id === 'demo-small-b'),
      'the round-robin ended on demo-small-b',
    );
    await platform.sendControl({ type: 'load', spec: models['demo-small'].spec, reason: 'request' });
    await platform.waitForLoaded('w2', 'demo-small');
    // a model that a live worker holds is not placed again, unless a replica is asked for
    await platform.sendControl({ type: 'load', spec: models['demo-tiny'].spec, reason: 'request' });
    await platform.sendControl({ type: 'load', spec: models['demo-small-b'].spec, reason: 'replica' });
    await platform.waitForLoaded('w2', 'demo-small-b');
    const events = await platform.events();
    assert.equal(events.filter((e) => e.worker === 'w2' && e.model === 'demo-tiny').length, 0);
    assert.equal(
      events.filter((e) => e.worker === 'w1' && e.type === 'loaded' && e.model === 'demo-small-b').length,
      2,
    );
  });

  it('fails a load that cannot fit with a recorded "cannot place" error', async () => {
    const tooBig = { ...models['demo-small'].spec, id: 'too-big' };
    // w2's budget holds one demo-small: the replica load above evicted its idle demo-small
    assert.ok(
      (await platform.events()).some((e) => e.worker === 'w2' && e.type === 'evicted' && e.model === 'demo-small'),
    );
    // unload w1's replica, so that w2 alone serves demo-small-b, and keep it busy: it may not be evicted
    await platform.sendCommand('w1', { type: 'unload', model: 'demo-small-b' });
    await waitFor('w1 without demo-small-b', async () => {
      const beat = await platform.heartbeat('w1');
      return beat?.models.every((m) => m.id !== 'demo-small-b');
    });
    const holdIds = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        platform.enqueue('demo-small-b', models['demo-small'].goldens.cases[i].prompt_ids, {
          maxNewTokens: 400,
          ignoreEos: true,
        }),
      ),
    );
    await waitFor('demo-small-b busy on w2', async () => {
      const beat = await platform.heartbeat('w2');
      return beat?.models.some((m) => m.id === 'demo-small-b' && m.running > 0);
    });
    await platform.sendCommand('w2', { type: 'load', spec: tooBig, reason: 'request' });
    const error = await waitFor(
      'the load error',
      async () => (await platform.redis.get(platform.names.loadError('too-big'))) ?? undefined,
    );
    assert.match(error, /cannot place/);
    for (const id of holdIds) assert.equal((await platform.readStream(id)).at(-1)?.type, 'final');
    assert.ok(!(await platform.events()).some((e) => e.model === 'too-big' && e.type === 'loaded'));
  });

  it('fails a malformed job (a validation error in its stream) and a malformed command, logs both, and goes on', async () => {
    const id = randomUUID();
    const bad = { requestId: id, model: 'demo-tiny', inputIds: ['x'], parameters: {}, queuedAt: Date.now() };
    const queue = platform.queue('demo-tiny');
    await queue.add('generate', bad as unknown as GenerateJob, { ...GENERATE_JOB_OPTIONS, jobId: id });
    const [error] = await platform.readStream(id, 30_000);
    assert.equal(error.type === 'error' && error.errorType, 'validation');
    assert.match(
      error.type === 'error' ? error.message : '',
      /malformed generate job: inputIds\.0: .*parameters\.doSample/,
    );
    const failed = await waitFor('the failed job', async () => (await queue.getJob(id))?.failedReason || undefined);
    assert.match(failed, /malformed generate job/);
    await platform.sendCommand('w1', {
      type: 'load',
      spec: { id: 'demo-tiny' },
      reason: 'request',
    } as unknown as ControlCommand);
    const { goldens } = models['demo-tiny'];
    const c = goldens.cases[0];
    const next = await platform.enqueue('demo-tiny', c.prompt_ids, { maxNewTokens: goldens.max_new_tokens });
    assert.deepEqual(generatedIds(await platform.readStream(next)), c.greedy_ids);
    const w1 = platform.workers.find((w) => w.id === 'w1')!;
    assert.equal(w1.child.exitCode, null, 'w1 is still running');
    assert.match(w1.output(), new RegExp(`job ${id}: malformed generate job`));
    assert.match(w1.output(), /control command load failed: malformed control command: spec\.path/);
  });
});

describe('worker pool: keep-alive', () => {
  const platform = new Platform();
  const spec = modelSpec('demo-tiny', modelDir('demo-tiny'));
  const goldens = loadGoldens('demo-tiny');

  before(() => platform.startWorker('k1', ['--keep-alive', '1s', '--host-memory', '0']));
  after(() => platform.close());

  it('unloads a model idle past the keep-alive, and the next request loads it again', async () => {
    for (let round = 1; round <= 2; round++) {
      await platform.sendControl({ type: 'load', spec, reason: 'request' });
      const c = goldens.cases[round];
      const id = await platform.enqueue('demo-tiny', c.prompt_ids, { maxNewTokens: goldens.max_new_tokens });
      assert.deepEqual(generatedIds(await platform.readStream(id)), c.greedy_ids);
      const evicted = await waitFor('the keep-alive unload', async () => {
        const events = await platform.events();
        const list = events.filter((e) => e.type === 'evicted');
        return list.length === round ? list : undefined;
      });
      assert.ok(evicted.every((e) => e.reason === 'keep_alive'));
      await waitFor('the heartbeat without the model', async () => {
        const beat = await platform.heartbeat('k1');
        return beat && beat.models.length === 0 && beat.memory.used === 0;
      });
    }
    const loads = (await platform.events()).filter((e) => e.type === 'loaded');
    assert.equal(loads.length, 2);
  });
});
