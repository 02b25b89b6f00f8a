/**
 * The worker's metrics, under TGI's batch names plus Switchyard's pool names. The heartbeat publishes a snapshot
 * to Redis (`metrics:<worker id>`) and the API's `/metrics` serves every live worker's, tagged `worker`.
 */
import type { StepStats } from '@switchyard/batching';
import { DURATION_BUCKETS, MetricsRegistry } from '@switchyard/batching';

export class WorkerMetrics {
  readonly registry = new MetricsRegistry();

  readonly batchSize = this.registry.gauge('tgi_batch_current_size', 'Rows in the running batch');
  readonly batchMaxTokens = this.registry.gauge(
    'tgi_batch_current_max_tokens',
    'Padded tokens the running batch may reach if no row leaves',
  );
  readonly inferenceDuration = this.registry.histogram(
    'tgi_batch_inference_duration',
    'Seconds per batch step: forward, sampling, stopping and events',
    DURATION_BUCKETS,
  );
  readonly forwardDuration = this.registry.histogram(
    'tgi_batch_forward_duration',
    'Seconds per ONNX Runtime forward call',
    DURATION_BUCKETS,
  );
  readonly inferenceSuccess = this.registry.counter('tgi_batch_inference_success', 'Batch steps that succeeded');
  readonly concat = this.registry.counter('tgi_batch_concat', 'Prefills that joined a running batch');
  readonly queueSize = this.registry.gauge('tgi_queue_size', 'Requests waiting: in the queue and in the engine');
  readonly loads = this.registry.counter('switchyard_model_loads_total', 'Models loaded, by tier: from disk or parked');
  readonly parks = this.registry.counter('switchyard_model_parks_total', 'Models moved to the parked tier, by reason');
  readonly loadFailures = this.registry.counter('switchyard_model_load_failures_total', 'Model loads that failed');
  readonly evictions = this.registry.counter('switchyard_model_evictions_total', 'Models unloaded, by reason');
  readonly loadDuration = this.registry.histogram(
    'switchyard_model_load_duration_seconds',
    'Seconds to load a model, by phase (thread, read, rewrite, session, warmup, total) and tier (cold, page_cache, parked)',
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  );
  readonly deviceMemory = this.registry.gauge('switchyard_device_memory_bytes', 'Device memory of the model pool');
  readonly eventLoopDelay = this.registry.gauge(
    'switchyard_event_loop_delay_max_seconds',
    'Worst event-loop delay in the last heartbeat interval',
  );
  readonly requests = this.registry.counter('switchyard_worker_requests_total', 'Requests finished, by outcome');
  /** 1 per loaded model, labelled with its weights' precision, its quantization and its attention path. */
  readonly modelInfo = this.registry.gauge(
    'switchyard_model_info',
    'A loaded model: dtype of its weights (fp32, fp16, q8, q4, ...), quantize (none, q8, q4), attention (fused or exported)',
  );

  private readonly labelCache = new Map<
    string,
    { model: Record<string, string>; prefill: Record<string, string>; decode: Record<string, string> }
  >();

  /** Records one engine step; label objects are cached per model so the step path allocates none. */
  step(model: string, stats: StepStats): void {
    let labels = this.labelCache.get(model);
    if (!labels) {
      labels = { model: { model }, prefill: { model, method: 'prefill' }, decode: { model, method: 'decode' } };
      this.labelCache.set(model, labels);
    }
    const byMethod = stats.phase === 'prefill' ? labels.prefill : labels.decode;
    this.forwardDuration.observe(stats.forwardMs / 1000, byMethod);
    this.inferenceDuration.observe(stats.inferenceMs / 1000, byMethod);
    this.inferenceSuccess.inc(byMethod);
    if (stats.concatenated) this.concat.inc(labels.model);
    this.batchSize.set(stats.batchSize, labels.model);
    this.batchMaxTokens.set(stats.projectedTokens, labels.model);
  }
}
