/**
 * This worker's models: the pool (budget, LRU eviction, keep-alive, one load per model), the host of each
 * loaded model, cancellation through the `cancel` channel, and the pool's events and metrics.
 */
import { performance } from 'node:perf_hooks';
import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  COMMAND_JOB_OPTIONS,
  CONTROL_QUEUE,
  ControlCommand,
  LoadError,
  EVENTS_MAX_LEN,
  ModelSpec,
  PoolEvent,
  RedisNames,
} from '@switchyard/protocol';
import {
  CannotPlaceError,
  estimateModelMemory,
  formatBytes,
  ModelPool,
  parseQuantize,
  poolBytes,
  Quantize,
} from '@switchyard/models';
import { spinsFor, WORKER_CONFIG, WorkerConfig } from '@switchyard/config';
import { ATTR, type Context, failSpan, ROOT_CONTEXT, type Span, tracer } from '@switchyard/telemetry';
import { WorkerMetrics } from '../metrics/worker-metrics';
import { createRedis, redisOptions } from '@switchyard/protocol';
import { StreamWriter } from '../streams/stream-writer';
import { Abandoned, ModelHost, ModelHostDeps } from './model-host';
import { RemoteEngine } from './remote-engine';

/**
 * After the drain deadline, how long the abandoned requests' ends (their error entries, their jobs back in the queue)
 * and each engine thread's release may take before the worker goes on without them.
 */
export const ABANDON_GRACE_MS = 2000;

@Injectable()
export class ModelPoolService implements OnApplicationShutdown {
  /** Called when a model changes tier (loaded, resumed, parked, unloaded): placement publishes a heartbeat at once. */
  onChange: () => void = () => undefined;
  readonly names: RedisNames;
  readonly redis: Redis;
  readonly pool: ModelPool<ModelSpec, ModelHost>;
  private readonly logger = new Logger('ModelPool');
  private readonly subscriber: Redis;
  private readonly writer: StreamWriter;
  private readonly hostDeps: ModelHostDeps;
  /** When the running requests must have ended: set at the first step of SIGTERM, `pause`. */
  private drainDeadline: number | null = null;
  /** Ends what still runs at the deadline, whether or not `drain` has begun by then. */
  private deadlineTimer: NodeJS.Timeout | null = null;
  private abandoning: Promise<void> | null = null;
  /** The span of each model's load under way (the first asker's, when several wait on one load). */
  private readonly loadSpans = new Map<string, Span>();

  constructor(
    @Inject(WORKER_CONFIG) readonly config: WorkerConfig,
    readonly metrics: WorkerMetrics,
    // BullModule's: closed after this service's onApplicationShutdown (an imported module's hooks run later)
    @InjectQueue(CONTROL_QUEUE) private readonly control: Queue<ControlCommand>,
  ) {
    this.names = new RedisNames(config.redisPrefix);
    this.redis = createRedis(config.redisUrl, `switchyard-worker-${config.workerId}`);
    this.subscriber = createRedis(config.redisUrl, `switchyard-worker-${config.workerId}-sub`);
    const connection = redisOptions(config.redisUrl);
    this.writer = new StreamWriter(this.redis, this.names, (err) =>
      this.logger.error(`writing a token stream failed: ${err.message}`),
    );
    this.hostDeps = {
      workerId: config.workerId,
      connection,
      names: this.names,
      writer: this.writer,
      metrics,
      scheduler: config.scheduler,
      lockDurationMs: config.lockDurationMs,
      touch: (id) => this.pool.touch(id),
      keepAlive: (id, ms) => this.pool.setKeepAlive(id, ms),
      onIdle: () => this.pool.notifyIdle(),
      requeue: async (spec) => {
        await this.control.add('load', { type: 'load', spec, reason: 'requeue' }, COMMAND_JOB_OPTIONS);
      },
      shuttingDown: () => this.drainDeadline !== null,
    };
    this.pool = new ModelPool<ModelSpec, ModelHost>({
      budgetBytes: config.deviceMemory,
      hostBudgetBytes: config.hostMemory,
      // a parked model keeps its weights and session; its KV cache and its working memory's reservation go
      parkedCost: (spec) => this.estimate(spec).weightBytes,
      keepAliveMs: config.keepAliveMs,
      placeTimeoutMs: config.placeTimeoutMs,
      cost: (spec) => this.cost(spec),
      load: (spec, bytes) => this.loadHost(spec, bytes),
      onLoaded: (id, ms) => {
        this.metrics.loads.inc({ model: id, tier: 'disk' });
        this.recordEvent({ type: 'loaded', model: id, ms: Math.round(ms), tier: 'disk' });
        this.onChange();
      },
      onResumed: (id, ms) => {
        this.loadSpans.get(id)?.setAttribute(ATTR.loadTier, 'parked');
        this.metrics.loads.inc({ model: id, tier: 'parked' });
        this.metrics.loadDuration.observe({ model: id, phase: 'total', tier: 'parked' }, ms / 1000);
        this.logger.log(`resumed ${id} from the parked tier in ${ms.toFixed(0)} ms`);
        this.recordEvent({ type: 'loaded', model: id, ms: Math.round(ms), tier: 'parked' });
        this.onChange();
      },
      onParked: (id, reason) => {
        this.metrics.parks.inc({ model: id, reason });
        this.recordEvent({ type: 'parked', model: id, reason });
        this.onChange();
      },
      onEvicted: (id, reason) => {
        this.metrics.evictions.inc({ model: id, reason });
        this.metrics.modelUnloaded(id);
        this.recordEvent({ type: 'evicted', model: id, reason });
        this.onChange();
      },
      log: (message) => this.logger.log(message),
    });
  }

  /** Subscribes to cancellations and starts a thread for the first load; called once the app is up. */
  async start(): Promise<void> {
    RemoteEngine.prepareSpare(this.streams());
    this.subscriber.on('message', (_channel: string, requestId: string) => this.cancel(requestId));
    await this.subscriber.subscribe(this.names.cancelChannel);
  }

  /**
   * Loads a model here (once), evicting idle ones if needed, in a span under `parent` (the load command's). Failures
   * are logged, recorded and rethrown.
   */
  async load(spec: ModelSpec, parent: Context = ROOT_CONTEXT): Promise<ModelHost> {
    const span = tracer.startSpan(
      'model load',
      { attributes: { [ATTR.model]: spec.id, [ATTR.worker]: this.config.workerId } },
      parent,
    );
    if (!this.loadSpans.has(spec.id)) this.loadSpans.set(spec.id, span);
    try {
      return await this.pool.ensure(spec);
    } catch (err) {
      failSpan(span, err);
      const message = (err as Error).message;
      const kind = err instanceof CannotPlaceError ? 'cannot place' : 'load failed';
      this.logger.error(`${kind}: ${spec.id}: ${message}`);
      this.metrics.loadFailures.inc({
        model: spec.id,
        reason: err instanceof CannotPlaceError ? 'cannot_place' : 'error',
      });
      this.recordEvent({ type: 'load_failed', model: spec.id, error: message });
      await this.redis
        .set(
          this.names.loadError(spec.id),
          JSON.stringify({ worker: this.config.workerId, error: message, kind, at: Date.now() } satisfies LoadError),
          'EX',
          30,
        )
        .catch(() => undefined);
      throw err;
    } finally {
      if (this.loadSpans.get(spec.id) === span) this.loadSpans.delete(spec.id);
      span.end();
    }
  }

  hosts(): ModelHost[] {
    const out: ModelHost[] = [];
    for (const { id, state } of this.pool.list()) {
      if (state !== 'loaded') continue;
      const host = this.pool.peek(id);
      if (host) out.push(host);
    }
    return out;
  }

  cancel(requestId: string): void {
    for (const host of this.hosts()) if (host.cancel(requestId)) return;
  }

  /**
   * SIGTERM, first step: no host fetches another job, and none loaded or resumed from now on will. The drain
   * deadline counts from here, whatever comes between this and `drain`.
   */
  async pause(): Promise<void> {
    if (this.drainDeadline === null) {
      this.drainDeadline = Date.now() + this.config.drainTimeoutMs;
      // placement closes its command consumers between `pause` and `drain`: a load command in flight (one waiting up
      // to --place-timeout for room) must not push the deadline back
      this.deadlineTimer = setTimeout(() => void this.abandon(), this.config.drainTimeoutMs);
    }
    await Promise.all(this.hosts().map((h) => h.pause()));
  }

  /**
   * SIGTERM: every host stops taking jobs and finishes its running requests, until the drain deadline
   * (--drain-timeout after the signal). Then the requests still running end at once: those that have sent tokens
   * with an error entry saying the worker shut down, the others back to the queue for another worker.
   */
  async drain(): Promise<void> {
    const deadline = (this.drainDeadline ??= Date.now() + this.config.drainTimeoutMs);
    const hosts = this.hosts();
    if (hosts.length === 0) {
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
      return;
    }
    const running = hosts.reduce((n, h) => n + h.activeRequests, 0);
    const started = Date.now();
    this.logger.log(`draining: ${running} running requests, up to ${Math.max(0, deadline - started)} ms`);
    const finished = await Promise.all(hosts.map((h) => h.stop(Math.max(0, deadline - Date.now()))));
    if (finished.every(Boolean)) {
      if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
      this.logger.log(`drained in ${Date.now() - started} ms`);
      return;
    }
    await this.abandon();
  }

  /**
   * The drain deadline: the requests still running end at once, those that have sent tokens with an error entry
   * saying the worker shut down, the others back to the queue for another worker. Once only.
   */
  private abandon(): Promise<void> {
    this.abandoning ??= (async () => {
      const hosts = this.hosts();
      const left = hosts.reduce((n, h) => n + h.activeRequests, 0);
      if (left === 0) return;
      const timeout = `--drain-timeout ${this.config.drainTimeoutMs} ms`;
      this.logger.warn(`drain timed out (${timeout}) with ${left} requests running: ending them`);
      const message = `the worker shut down before the request finished (${timeout})`;
      const results: Abandoned[] = await Promise.all(hosts.map((h) => h.abandon(message, ABANDON_GRACE_MS)));
      const ended = results.reduce((n, r) => n + r.ended, 0);
      const requeued = results.reduce((n, r) => n + r.requeued, 0);
      this.logger.warn(
        `drain deadline: ${ended} requests ended with an error after their first tokens, ${requeued} sent back to the queue`,
      );
    })();
    return this.abandoning;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    await this.pool.close();
    await RemoteEngine.disposeSpare();
    await this.writer.settle();
    this.subscriber.disconnect();
    await this.redis.quit().catch(() => undefined);
  }

  /** The quantization a model loads with: its own (from the registry), or this worker's --quantize. */
  private quantizeFor(spec: ModelSpec): Quantize {
    return spec.quantization === null ? this.config.quantize : parseQuantize(spec.quantization);
  }

  private estimate(spec: ModelSpec) {
    return estimateModelMemory(spec.path, {
      dtype: this.config.dtype,
      quantize: this.quantizeFor(spec),
      quantizeBlockSize: this.config.quantizeBlockSize,
      executionProvider: this.config.executionProvider,
    });
  }

  private cost(spec: ModelSpec): number {
    return poolBytes(this.estimate(spec), {
      totalTokens: this.config.scheduler.maxBatchTotalTokens,
      prefillTokens: this.config.scheduler.maxBatchPrefillTokens,
    });
  }

  private streams() {
    return { redisUrl: this.config.redisUrl, redisPrefix: this.config.redisPrefix, workerId: this.config.workerId };
  }

  private async loadHost(spec: ModelSpec, bytes: number): Promise<ModelHost> {
    this.recordEvent({ type: 'load_started', model: spec.id });
    const quantize = this.quantizeFor(spec);
    this.logger.log(
      `loading ${spec.id} from ${spec.path} (${formatBytes(bytes)} reserved${quantize === 'none' ? '' : `, quantized to ${quantize}`})`,
    );
    const started = performance.now();
    const engine = await RemoteEngine.start(
      this.streams(),
      {
        dir: spec.path,
        session: {
          executionProvider: this.config.executionProvider,
          intraOpThreads: this.config.intraOpThreads,
          fuseAttention: this.config.fuseAttention,
          spinning: spinsFor(this.config.intraOpSpin, this.estimate(spec).weightBytes),
          spinDurationUs: this.config.intraOpSpinUs,
          dtype: this.config.dtype,
          quantize,
          quantizeBlockSize: this.config.quantizeBlockSize,
          cacheDir: this.config.cacheDir,
        },
        engine: { ...this.config.scheduler, maxTotalTokens: spec.maxTotalTokens ?? undefined },
      },
      (message) => this.logger.log(`${spec.id}: ${message}`),
    ).finally(() => RemoteEngine.prepareSpare(this.streams()));
    const totalMs = performance.now() - started;
    const { info, timings, tier } = engine;
    // the phases of a load, as the metric labels them
    const phases: Record<string, number> = {
      thread: totalMs - engine.loadMs,
      read: (timings.read ?? 0) + (timings.hash ?? 0),
      rewrite: (timings.rewrite ?? 0) + (timings.quantize ?? 0),
      session: (timings.session ?? 0) + (timings.check ?? 0),
      warmup: timings.warmup ?? 0,
      total: totalMs,
    };
    for (const [phase, ms] of Object.entries(phases)) {
      this.metrics.loadDuration.observe({ model: spec.id, phase, tier }, ms / 1000);
    }
    this.loadSpans.get(spec.id)?.setAttributes({
      [ATTR.loadTier]: tier,
      ...Object.fromEntries(Object.entries(phases).map(([phase, ms]) => [`switchyard.load.${phase}_ms`, ms])),
    });
    const attention =
      info.attention === 'fused'
        ? 'attention rewritten, worker-owned cache'
        : `export as is${info.fusionSkipped ? ` (not rewritten: ${info.fusionSkipped})` : ''}`;
    const steps = Object.entries(timings)
      .map(([step, ms]) => `${step} ${ms.toFixed(0)}`)
      .join(', ');
    this.logger.log(
      `loaded ${spec.id} in ${totalMs.toFixed(0)} ms (${tier === 'page_cache' ? 'from the page cache' : tier === 'cold' ? 'from disk' : 'page cache unknown'}; ` +
        `thread ${phases.thread.toFixed(0)}, ${steps} ms): ${info.dtype} weights, ` +
        `${formatBytes(engine.memory.weightBytes)} resident, ${info.kvDtype} cache; ${attention}` +
        (info.optimizedGraph === 'none'
          ? ''
          : `; optimised graph ${info.optimizedGraph === 'read' ? 'read from' : 'written to'} the cache`),
    );
    this.metrics.modelLoaded(spec.id, info);
    const host = new ModelHost(spec, engine, this.hostDeps);
    host.start();
    return host;
  }

  private recordEvent(event: Omit<PoolEvent, 'at' | 'worker'>): void {
    const entry: PoolEvent = { at: Date.now(), worker: this.config.workerId, ...event };
    void this.redis
      .multi()
      .lpush(this.names.events, JSON.stringify(entry))
      .ltrim(this.names.events, 0, EVENTS_MAX_LEN - 1)
      .exec()
      .catch((err: Error) => this.logger.warn(`recording a pool event failed: ${err.message}`));
  }
}
