import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS, labelSnapshot, parseMetricsSnapshot } from './metrics';

async function workerSnapshot(): Promise<string> {
  const registry = new Registry();
  const steps = new Counter({ name: 'steps_total', help: 'Steps', labelNames: ['model'], registers: [registry] });
  const duration = new Histogram({
    name: 'step_seconds',
    help: 'Seconds per step',
    labelNames: ['model'],
    buckets: [...DURATION_BUCKETS],
    registers: [registry],
  });
  steps.inc({ model: 'm' }, 2);
  duration.observe({ model: 'm' }, 0.02);
  return JSON.stringify(await registry.getMetricsAsJSON());
}

describe('metrics snapshot', () => {
  it('reads what a worker publishes: getMetricsAsJSON, histograms as _bucket/_sum/_count values', async () => {
    const snapshot = parseMetricsSnapshot(await workerSnapshot())!;
    assert.deepEqual(
      snapshot.map((f) => [f.name, f.type, f.aggregator]),
      [
        ['steps_total', 'counter', 'sum'],
        ['step_seconds', 'histogram', 'sum'],
      ],
    );
    assert.deepEqual(snapshot[0].values, [{ value: 2, labels: { model: 'm' } }]);
    const buckets = snapshot[1].values.filter((v) => v.metricName === 'step_seconds_bucket');
    assert.equal(buckets.length, DURATION_BUCKETS.length + 1);
    assert.deepEqual(buckets.at(-1), {
      value: 1,
      labels: { model: 'm', le: '+Inf' },
      metricName: 'step_seconds_bucket',
    });
  });

  it('reads null (JSON for NaN and ±Inf) as NaN', () => {
    const raw = JSON.stringify([
      { name: 'g', help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value: null, labels: {} }] },
    ]);
    assert.ok(Number.isNaN(parseMetricsSnapshot(raw)![0].values[0].value));
  });

  it('rejects what is not JSON, or not a snapshot', () => {
    const family = { name: 'g', help: 'h', type: 'gauge', aggregator: 'sum', values: [{ value: 1, labels: {} }] };
    for (const raw of [
      '',
      '[{"name":',
      '{}',
      'null',
      JSON.stringify([{ ...family, type: 'summary' }]),
      JSON.stringify([{ ...family, aggregator: 'median' }]),
      JSON.stringify([{ ...family, name: 'bad name' }]),
      JSON.stringify([{ ...family, values: [{ value: '1', labels: {} }] }]),
      JSON.stringify([{ ...family, values: [{ value: 1, labels: { 'bad-label': 'x' } }] }]),
      JSON.stringify([{ ...family, values: [{ value: 1, labels: { a: { nested: 1 } } }] }]),
      JSON.stringify([{ ...family, help: undefined }]),
    ]) {
      assert.equal(parseMetricsSnapshot(raw), null, raw);
    }
  });

  it('labels every value without touching the original', async () => {
    const snapshot = parseMetricsSnapshot(await workerSnapshot())!;
    const tagged = labelSnapshot(snapshot, { worker: 'w1' });
    assert.ok(tagged.every((f) => f.values.every((v) => v.labels.worker === 'w1')));
    assert.ok(snapshot.every((f) => f.values.every((v) => !('worker' in v.labels))));
  });
});
