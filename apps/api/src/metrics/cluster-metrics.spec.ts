import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { labelSnapshot, MetricsSnapshot, parseMetricsSnapshot } from '@switchyard/protocol';
import { clusterRegistry } from './cluster-metrics';

/** A worker's snapshot as the API reads it: published, parsed, tagged with its id. */
async function worker(id: string, steps: number, batch: number): Promise<MetricsSnapshot> {
  const registry = new Registry();
  new Counter({ name: 'tgi_batch_inference_success', help: 'Steps', labelNames: ['model'], registers: [registry] }).inc(
    { model: 'm' },
    steps,
  );
  new Gauge({ name: 'tgi_batch_current_size', help: 'Rows', labelNames: ['model'], registers: [registry] }).set(
    { model: 'm' },
    batch,
  );
  new Histogram({
    name: 'tgi_batch_forward_duration',
    help: 'Seconds',
    buckets: [0.1, 1],
    registers: [registry],
  }).observe(0.5);
  new Gauge({ name: 'tgi_request_count', help: 'Clash with the API', registers: [registry] }).set(99);
  const snapshot = parseMetricsSnapshot(JSON.stringify(await registry.getMetricsAsJSON()))!;
  return labelSnapshot(snapshot, { worker: id });
}

function api(): Registry {
  const registry = new Registry();
  new Counter({ name: 'tgi_request_count', help: 'Requests', registers: [registry] }).inc(3);
  return registry;
}

describe('clusterRegistry', () => {
  it("serves the API's metrics, then every worker's series under its own worker label", async () => {
    const text = await clusterRegistry(api(), [await worker('w1', 5, 2), await worker('w2', 7, 1)]).metrics();
    const lines = text.split('\n');
    for (const line of [
      'tgi_request_count 3',
      'tgi_batch_inference_success{model="m",worker="w1"} 5',
      'tgi_batch_inference_success{model="m",worker="w2"} 7',
      'tgi_batch_current_size{model="m",worker="w1"} 2',
      'tgi_batch_current_size{model="m",worker="w2"} 1',
      'tgi_batch_forward_duration_bucket{le="0.1",worker="w1"} 0',
      'tgi_batch_forward_duration_bucket{le="1",worker="w2"} 1',
      'tgi_batch_forward_duration_bucket{le="+Inf",worker="w2"} 1',
      'tgi_batch_forward_duration_sum{worker="w1"} 0.5',
      'tgi_batch_forward_duration_count{worker="w2"} 1',
    ]) {
      assert.ok(lines.includes(line), `${line} in\n${text}`);
    }
    // a worker's family named like one of the API's is left out, not merged into it
    assert.equal(lines.filter((l) => l.startsWith('# TYPE tgi_request_count ')).length, 1);
    assert.ok(!text.includes('99'));
  });

  it('leaves out a family typed otherwise than the first worker that has it', async () => {
    const other = (await worker('w2', 7, 1)).map((f) =>
      f.name === 'tgi_batch_current_size' ? { ...f, type: 'counter' as const } : f,
    );
    const text = await clusterRegistry(api(), [await worker('w1', 5, 2), other]).metrics();
    assert.match(text, /# TYPE tgi_batch_current_size gauge/);
    assert.ok(!text.includes('tgi_batch_current_size{model="m",worker="w2"}'));
  });

  it('keeps a registry of its own: the next scrape starts afresh', async () => {
    const own = api();
    clusterRegistry(own, [await worker('w1', 5, 2)]);
    const text = await clusterRegistry(own, []).metrics();
    assert.ok(!text.includes('worker="w1"'));
    assert.match(text, /tgi_request_count 3/);
  });
});
