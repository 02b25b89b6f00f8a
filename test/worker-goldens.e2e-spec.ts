/**
 * A worker process serves queued requests: real Redis, a real worker, the real demo models. Every golden case,
 * queued at once, comes back through the token stream with the golden ids, and the stream's entries, metrics
 * and heartbeat say what happened.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generatedIds, Platform, waitFor } from './support/platform';
import { loadGoldens, modelDir } from './support/repo';

describe('worker: queue to stream', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-tiny');

  before(async () => {
    await platform.startWorker('w1', ['--preload', modelDir('demo-tiny')]);
    await platform.waitForLoaded('w1', 'demo-tiny');
  });
  after(() => platform.close());

  it('serves every golden case, queued together, with the golden ids', async () => {
    const ids = await Promise.all(
      goldens.cases.map((c) => platform.enqueue('demo-tiny', c.prompt_ids, { maxNewTokens: goldens.max_new_tokens })),
    );
    const streams = await Promise.all(ids.map((id) => platform.readStream(id)));
    streams.forEach((events, i) => {
      const golden = goldens.cases[i];
      assert.deepEqual(generatedIds(events), golden.greedy_ids, `case ${i}: ${JSON.stringify(golden.prompt)}`);
      assert.equal(events[0].type, 'start');
      assert.ok(events.every((e) => e.attempt === 1));
      const final = events.at(-1)!;
      const tokens = events.flatMap((e) => (e.type === 'token' ? [e.token] : []));
      if (final.type === 'final' && final.lastToken) tokens.push(final.lastToken.token);
      const streamed = tokens.map((t) => (t.special ? '' : t.text)).join('');
      assert.equal(final.type === 'final' && final.generatedText, streamed);
    });
  });

  it('publishes its heartbeat and batch metrics to Redis', async () => {
    const beat = (await platform.heartbeat('w1'))!;
    const model = beat.models.find((m) => m.id === 'demo-tiny')!;
    assert.equal(model.state, 'loaded');
    assert.ok(beat.memory.used > 0 && beat.memory.used <= beat.memory.budget);
    // the snapshot is rewritten with every heartbeat: wait for one taken after the requests above
    const families = await waitFor('decode steps in the metrics', async () => {
      const snapshot = await platform.metrics('w1');
      const forward = snapshot?.find((f) => f.name === 'tgi_batch_forward_duration');
      const decodes = forward?.values.find(
        (v) => v.metricName === 'tgi_batch_forward_duration_count' && v.labels.method === 'decode',
      );
      return decodes && decodes.value > 0 ? snapshot : undefined;
    });
    const byName = new Map(families.map((f) => [f.name, f]));
    for (const name of [
      'tgi_batch_current_size',
      'tgi_batch_forward_duration',
      'tgi_batch_inference_duration',
      'tgi_queue_size',
      'switchyard_model_loads_total',
      'switchyard_model_load_duration_seconds',
      'switchyard_device_memory_bytes',
    ]) {
      assert.ok(byName.has(name), `metric ${name}`);
    }
    assert.equal(byName.get('tgi_batch_forward_duration')!.type, 'histogram');
    const loads = byName.get('switchyard_model_loads_total')!.values.find((v) => v.labels.model === 'demo-tiny');
    assert.equal(loads?.value, 1);
  });

  it('answers a request the engine refuses with a validation error entry', async () => {
    const id = await platform.enqueue('demo-tiny', [], {});
    const events = await platform.readStream(id);
    const last = events.at(-1)!;
    assert.equal(last.type, 'error');
    assert.equal(last.type === 'error' && last.errorType, 'validation');
  });
});
