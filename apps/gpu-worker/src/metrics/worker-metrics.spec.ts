import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StepStats } from '@switchyard/batching';
import { parseMetricsSnapshot } from '@switchyard/protocol';
import { WorkerMetrics } from './worker-metrics';

const step = (phase: 'prefill' | 'decode', over: Partial<StepStats> = {}): StepStats => ({
  phase,
  batchSize: 2,
  width: 8,
  paddedTokens: 16,
  projectedTokens: 40,
  forwardMs: 20,
  inferenceMs: 25,
  concatenated: false,
  joined: 0,
  left: 0,
  ...over,
});

describe('WorkerMetrics', () => {
  it('records steps per model and method, through series it looks up once', async () => {
    const metrics = new WorkerMetrics();
    metrics.step('a', step('prefill', { concatenated: true }));
    metrics.step('a', step('decode'));
    metrics.step('a', step('decode', { batchSize: 1, projectedTokens: 30 }));
    metrics.step('b', step('decode'));
    const text = await metrics.registry.metrics();
    for (const line of [
      'tgi_batch_inference_success{model="a",method="prefill"} 1',
      'tgi_batch_inference_success{model="a",method="decode"} 2',
      'tgi_batch_inference_success{model="b",method="decode"} 1',
      'tgi_batch_concat{model="a"} 1',
      'tgi_batch_current_size{model="a"} 1',
      'tgi_batch_current_max_tokens{model="a"} 30',
      'tgi_batch_forward_duration_bucket{le="0.025",model="a",method="decode"} 2',
      'tgi_batch_forward_duration_bucket{le="0.01",model="a",method="decode"} 0',
      'tgi_batch_forward_duration_sum{model="a",method="decode"} 0.04',
      'tgi_batch_inference_duration_count{model="a",method="prefill"} 1',
    ]) {
      assert.ok(text.split('\n').includes(line), `${line} in\n${text}`);
    }
  });

  it("keeps one switchyard_model_info series per loaded model and drops an unloaded model's", async () => {
    const metrics = new WorkerMetrics();
    metrics.modelLoaded('a', { dtype: 'fp32', quantize: 'none', attention: 'fused' });
    metrics.modelLoaded('b', { dtype: 'q8', quantize: 'q8', attention: 'exported' });
    metrics.modelLoaded('a', { dtype: 'q4', quantize: 'q4', attention: 'fused' });
    metrics.modelUnloaded('b');
    metrics.modelUnloaded('never-loaded');
    const info = (await metrics.modelInfo.get()).values;
    assert.deepEqual(info, [{ value: 1, labels: { model: 'a', dtype: 'q4', quantize: 'q4', attention: 'fused' } }]);
  });

  it('publishes a snapshot the API parses', async () => {
    const metrics = new WorkerMetrics();
    metrics.step('a', step('decode'));
    const snapshot = parseMetricsSnapshot(JSON.stringify(await metrics.registry.getMetricsAsJSON()));
    assert.ok(snapshot);
    assert.equal(snapshot.length, 16);
  });
});
