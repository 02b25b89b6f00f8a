/**
 * The worker's metrics (prom-client, in a registry of its own), under TGI's batch names plus Switchyard's pool
 * names. The heartbeat publishes `registry.getMetricsAsJSON()` to Redis (`metrics:<worker id>`) and the API's
 * `/metrics` aggregates every live worker's, tagged `worker`.
 */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { StepStats } from '@switchyard/batching';
import { counter, DURATION_BUCKETS, gauge, histogram, MetricFamilies } from '@switchyard/protocol';

/** A model's step series, looked up once per model: `labels()` hashes and allocates on every call. */
interface StepSeries {
  prefill: MethodSeries;
  decode: MethodSeries;
  concat: Counter.Internal;
  batchSize: Gauge.Internal<'model'>;
  batchMaxTokens: Gauge.Internal<'model'>;
}

interface MethodSeries {
  forward: Histogram.Internal<'model' | 'method'>;
  inference: Histogram.Internal<'model' | 'method'>;
  success: Counter.Internal;
}

export interface ModelInfo {
  dtype: string;
  quantize: string;
  attention: string;
}

const WORKER_METRICS = {
  batchSize: gauge('tgi_batch_current_size', 'Rows in the running batch', ['model']),
  batchMaxTokens: gauge('tgi_batch_current_max_tokens', 'Padded tokens the running batch may reach if no row leaves', [
    'model',
  ]),
  inferenceDuration: histogram(
    'tgi_batch_inference_duration',
    'Seconds per batch step: forward, sampling, stopping and events',
    DURATION_BUCKETS,
    ['model', 'method'],
  ),
  forwardDuration: histogram('tgi_batch_forward_duration', 'Seconds per ONNX Runtime forward call', DURATION_BUCKETS, [
    'model',
    'method',
  ]),
  inferenceSuccess: counter('tgi_batch_inference_success', 'Batch steps that succeeded', ['model', 'method']),
  concat: counter('tgi_batch_concat', 'Prefills that joined a running batch', ['model']),
  queueSize: gauge('tgi_queue_size', 'Requests waiting: in the queue and in the engine', ['model']),
  loads: counter('switchyard_model_loads_total', 'Models loaded, by tier: from disk or parked', ['model', 'tier']),
  parks: counter('switchyard_model_parks_total', 'Models moved to the parked tier, by reason', ['model', 'reason']),
  loadFailures: counter('switchyard_model_load_failures_total', 'Model loads that failed', ['model', 'reason']),
  evictions: counter('switchyard_model_evictions_total', 'Models unloaded, by reason', ['model', 'reason']),
  loadDuration: histogram(
    'switchyard_model_load_duration_seconds',
    'Seconds to load a model, by phase (thread, read, rewrite, session, warmup, total) and tier (cold, page_cache, parked)',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    ['model', 'phase', 'tier'],
  ),
  deviceMemory: gauge('switchyard_device_memory_bytes', 'Device memory of the model pool', ['kind']),
  eventLoopDelay: gauge(
    'switchyard_event_loop_delay_max_seconds',
    'Worst event-loop delay in the last heartbeat interval',
  ),
  requests: counter('switchyard_worker_requests_total', 'Requests finished, by outcome', ['model', 'outcome']),
  /** 1 per loaded model, labelled with its weights' precision, its quantization and its attention path. */
  modelInfo: gauge(
    'switchyard_model_info',
    'A loaded model: dtype of its weights (fp32, fp16, q8, q4, ...), quantize (none, q8, q4), attention (fused or exported)',
    ['model', 'dtype', 'quantize', 'attention'],
  ),
};

export class WorkerMetrics extends MetricFamilies(WORKER_METRICS) {
  private readonly stepSeries = new Map<string, StepSeries>();
  /** The info labels each loaded model was set with, to remove its series when it goes. */
  private readonly infoLabels = new Map<string, ModelInfo & { model: string }>();

  /** Records one engine step; the series are cached per model so the step path looks none up. */
  step(model: string, stats: StepStats): void {
    const series = this.stepSeries.get(model) ?? this.createStepSeries(model);
    const byMethod = stats.phase === 'prefill' ? series.prefill : series.decode;
    byMethod.forward.observe(stats.forwardMs / 1000);
    byMethod.inference.observe(stats.inferenceMs / 1000);
    byMethod.success.inc();
    if (stats.concatenated) series.concat.inc();
    series.batchSize.set(stats.batchSize);
    series.batchMaxTokens.set(stats.projectedTokens);
  }

  /** `switchyard_model_info` 1 for a model now loaded. */
  modelLoaded(model: string, info: ModelInfo): void {
    this.modelUnloaded(model);
    const labels = { model, dtype: info.dtype, quantize: info.quantize, attention: info.attention };
    this.infoLabels.set(model, labels);
    this.modelInfo.set(labels, 1);
  }

  /** Drops an unloaded model's `switchyard_model_info` series. */
  modelUnloaded(model: string): void {
    const labels = this.infoLabels.get(model);
    if (labels === undefined) return;
    this.modelInfo.remove(labels);
    this.infoLabels.delete(model);
  }

  private createStepSeries(model: string): StepSeries {
    const method = (name: 'prefill' | 'decode'): MethodSeries => ({
      forward: this.forwardDuration.labels({ model, method: name }),
      inference: this.inferenceDuration.labels({ model, method: name }),
      success: this.inferenceSuccess.labels({ model, method: name }),
    });
    const series: StepSeries = {
      prefill: method('prefill'),
      decode: method('decode'),
      concat: this.concat.labels({ model }),
      batchSize: this.batchSize.labels({ model }),
      batchMaxTokens: this.batchMaxTokens.labels({ model }),
    };
    this.stepSeries.set(model, series);
    return series;
  }
}
