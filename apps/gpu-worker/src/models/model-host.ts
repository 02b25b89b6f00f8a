/**
 * One loaded model on this worker: its engine, and the BullMQ consumer of its queue `generate:<model>` that
 * feeds jobs into the engine. A job stays active (holding its lock) until its request ends; the engine thread
 * writes the request's stream. The pool unloads a host through `unload`: stop consuming, finish what runs, release
 * the session, and ask for a load elsewhere if jobs are left in the queue.
 */
import { Logger } from '@nestjs/common';
import { Job, Queue, WaitingError, Worker } from 'bullmq';
import type { ConnectionOptions } from 'bullmq';
import { EngineEvent, SchedulerConfig } from '@switchyard/batching';
import { GenerateJob, isValidId, ModelSpec, parseGenerateJob, RedisNames } from '@switchyard/protocol';
import type { PooledModel } from '@switchyard/models';
import type { StreamWriter } from '../streams/stream-writer';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import {
  ATTR,
  type Context,
  contextFrom,
  failSpan,
  recordSpan,
  type Span,
  SpanKind,
  trace,
  tracer,
} from '@switchyard/telemetry';
import { EngineTimeline, REQUEUE, SHUTDOWN } from './engine-thread';
import type { RemoteEngine } from './remote-engine';
import { takerName } from '../placement/incarnation';

export interface ModelHostDeps {
  workerId: string;
  connection: ConnectionOptions;
  names: RedisNames;
  /** Writes the entries that the engine thread could not: a request that ended because the thread died. */
  writer: StreamWriter;
  metrics: WorkerMetrics;
  scheduler: SchedulerConfig;
  lockDurationMs: number;
  /** Marks the model as used now, for LRU eviction and the keep-alive. */
  touch(model: string): void;
  /** A request's `keep_alive` for the model (the last one's wins, as in Ollama). */
  keepAlive(model: string, ms: number): void;
  /** Tells the pool that this model went idle, so loads waiting for room can look again. */
  onIdle(): void;
  /** Jobs are left in the queue after this host stopped consuming it: ask for a load somewhere. */
  requeue(spec: ModelSpec): Promise<void>;
  /** True once the worker is stopping: a host loaded or resumed now takes no job. */
  shuttingDown(): boolean;
}

/** What the drain deadline did to a host's running requests. */
export interface Abandoned {
  /** Ended with an error entry: they had sent tokens. */
  ended: number;
  /** Sent back to the queue: nothing had been sent. */
  requeued: number;
}

export class ModelHost implements PooledModel {
  private readonly logger: Logger;
  /** The queue's consumer while the model takes requests; null while parked. */
  private consumer: Worker<GenerateJob> | null = null;
  private readonly queue: Queue<GenerateJob>;
  /** Running requests by id, to cancel them. */
  private readonly active = new Map<string, AbortController>();
  /** Set once the host stops taking jobs; a job fetched after that goes back to the queue. */
  private paused = false;
  /** The consumer's close, once `stop` began it: it resolves when the running jobs have ended. */
  private closing: Promise<void> = Promise.resolve();
  /** Set at the drain deadline: the engine's release is bounded too. */
  private abandoned: { ended: number; requeued: number; graceMs: number } | null = null;

  constructor(
    readonly spec: ModelSpec,
    /** The model's engine, in its own thread. */
    readonly engine: RemoteEngine,
    private readonly deps: ModelHostDeps,
  ) {
    this.logger = new Logger(`Model ${spec.id}`);
    this.engine.onStep = (stats) => deps.metrics.step(spec.id, stats);
    this.queue = new Queue(spec.id, { connection: deps.connection, prefix: deps.names.generatePrefix });
  }

  /** Starts consuming the model's queue (at load, and when it comes back from the parked tier). */
  start(): void {
    if (this.deps.shuttingDown()) return;
    this.paused = false;
    // BullMQ's Worker itself, not a @Processor: the queue is per model, opened and closed with the model, and it feeds
    // up to a batch of jobs at once into the running engine, named `<worker id>/<incarnation>` for crash recovery
    const consumer = new Worker<GenerateJob>(this.spec.id, (job, token) => this.process(job, token), {
      connection: this.deps.connection,
      prefix: this.deps.names.generatePrefix,
      // Jobs beyond one batch stay in Redis, where a replica on another worker can take them.
      concurrency: this.deps.scheduler.maxBatchSize,
      lockDuration: this.deps.lockDurationMs,
      // every second, whatever the lock: a job released by crash recovery (orphan-recovery.ts) runs again at once
      stalledInterval: 1000,
      // recorded on each job it takes (`pb`), so that crash recovery knows whose jobs they are
      name: takerName(this.deps.workerId),
      maxStalledCount: 3,
      autorun: false,
    });
    consumer.on('error', (err) => this.logger.error(`queue consumer: ${err.message}`));
    this.consumer = consumer;
    void consumer.run().catch((err: Error) => this.logger.error(`queue consumer stopped: ${err.message}`));
  }

  isIdle(): boolean {
    return this.active.size === 0 && this.engine.pending === 0;
  }

  get activeRequests(): number {
    return this.active.size;
  }

  /** Cancels a running request of this model; true if it was here. */
  cancel(requestId: string): boolean {
    const controller = this.active.get(requestId);
    if (!controller) return false;
    controller.abort();
    return true;
  }

  /** Jobs waiting in the queue, and the age of the oldest in milliseconds. */
  async queueStats(): Promise<{ queued: number; oldestQueuedMs: number }> {
    const queued = await this.queue.getWaitingCount();
    if (queued === 0) return { queued, oldestQueuedMs: 0 };
    const [oldest] = await this.queue.getJobs(['wait'], 0, 0, true);
    return { queued, oldestQueuedMs: oldest ? Math.max(0, Date.now() - oldest.timestamp) : 0 };
  }

  /** Stops fetching jobs at once; the running ones go on. */
  async pause(): Promise<void> {
    this.paused = true;
    await this.consumer?.pause(true);
  }

  /** Stops taking jobs and waits for the running ones; with a deadline, gives up on them after it. */
  async stop(deadlineMs = Infinity): Promise<boolean> {
    this.paused = true;
    const consumer = this.consumer;
    this.consumer = null;
    if (!consumer) return true;
    const closing = consumer.close();
    this.closing = closing;
    if (!Number.isFinite(deadlineMs)) {
      await closing;
      return true;
    }
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      closing.then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs))),
    ]);
    clearTimeout(timer);
    return finished;
  }

  /**
   * The drain deadline has passed (after `stop`): every running request ends now. Those that have sent a token end
   * with an error entry carrying `message`; the others go back to the queue, for another worker. Resolves once their
   * jobs are off this worker and its consumer closed, or after `graceMs` whatever happened.
   */
  async abandon(message: string, graceMs: number): Promise<Abandoned> {
    const counts = { ended: 0, requeued: 0, graceMs };
    this.abandoned = counts;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.engine.abandon(message).then(() => this.closing),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
    ]);
    clearTimeout(timer);
    return { ended: counts.ended, requeued: counts.requeued };
  }

  async unload(): Promise<void> {
    await this.stop();
    // abandoned requests have ended: a step still computing is not waited for long
    await this.engine.release(this.abandoned?.graceMs ?? Infinity);
    await this.requeueLeft('unloading');
    await this.queue.close();
  }

  /**
   * The parked tier: stops taking jobs and lets the running ones finish; the engine thread and its session stay,
   * holding no KV cache once its batch is empty. Jobs left in the queue ask for a load (here, which resumes it, or
   * on another worker).
   */
  async park(): Promise<void> {
    await this.stop();
    await this.requeueLeft('parking');
  }

  /** Back from the parked tier: the session is there, so only the queue's consumer starts. */
  resume(): Promise<void> {
    this.start();
    return Promise.resolve();
  }

  private async requeueLeft(why: string): Promise<void> {
    const left = await this.queue.getWaitingCount().catch(() => 0);
    if (left === 0) return;
    this.logger.log(`${left} jobs left in the queue after ${why}: asking for a load`);
    await this.deps.requeue(this.spec).catch((err: Error) => this.logger.error(`requeue failed: ${err.message}`));
  }

  /**
   * The job's payload, parsed. A malformed one fails the job (BullMQ records the error) after a log line and, where
   * the job says where its client listens, a validation error in the request's stream, so no client waits on it.
   */
  private async payload(job: Job<GenerateJob>): Promise<GenerateJob> {
    try {
      return parseGenerateJob(job.data);
    } catch (err) {
      const message = (err as Error).message;
      this.logger.error(`job ${job.id}: ${message}`);
      const raw = job.data as Partial<Record<keyof GenerateJob, unknown>> | null;
      const requestId = typeof raw?.requestId === 'string' ? raw.requestId : job.id;
      const notify = typeof raw?.notify === 'string' && isValidId(raw.notify) ? raw.notify : null;
      if (requestId) {
        const { writer, names } = this.deps;
        const event = { type: 'error', errorType: 'validation', message } as const;
        writer.push(requestId, { attempt: job.attemptsStarted, ...event }, notify && names.inbox(notify));
        await writer.settle();
      }
      throw err;
    }
  }

  /** Runs one job: its promise settles when the request ends, so the job holds its lock while it runs. */
  private async process(job: Job<GenerateJob>, token?: string): Promise<void> {
    if (this.paused) {
      // fetched while this host was stopping: back to the queue for another worker
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const data = await this.payload(job);
    const requestId = data.requestId;
    const attempt = job.attemptsStarted;
    const { writer, metrics, names } = this.deps;
    const { span, context } = this.traceJob(data, attempt);
    const inbox = data.notify === undefined ? null : names.inbox(data.notify);
    const controller = new AbortController();
    this.active.set(requestId, controller);
    this.deps.touch(this.spec.id);
    if (data.keepAliveMs !== undefined) this.deps.keepAlive(this.spec.id, data.keepAliveMs);
    try {
      // The engine thread writes the stream (start, tokens, the last entry); the job ends once that is written.
      // A cancel reaches the thread, which drops the row at its next step and writes the cancelled entry; one sent
      // before the job started is found by the thread when it writes the start.
      const outcome = await new Promise<string>((resolve) => {
        const onEnd = (result: string, unwritten?: EngineEvent, timeline?: EngineTimeline) => {
          if (unwritten) writer.push(requestId, { attempt, ...unwritten }, inbox);
          if (timeline && span.isRecording()) traceEngine(context, timeline);
          resolve(result);
        };
        try {
          this.engine.submit(
            {
              id: requestId,
              inputIds: data.inputIds,
              inputText: data.inputText,
              parameters: data.parameters,
              signal: controller.signal,
            },
            { attempt, startedAt: Date.now(), inbox },
            onEnd,
          );
        } catch (err) {
          onEnd('generation', { type: 'error', errorType: 'generation', message: (err as Error).message });
        }
      });
      metrics.requests.inc({ model: this.spec.id, outcome });
      span.setAttribute(ATTR.outcome, outcome);
      if (outcome === 'generation' || outcome === SHUTDOWN) failSpan(span, new Error(`the request ended: ${outcome}`));
      if (outcome === SHUTDOWN && this.abandoned) this.abandoned.ended++;
      if (outcome === REQUEUE) {
        if (this.abandoned) this.abandoned.requeued++;
        // nothing was sent but its start: another worker runs it as the next attempt (if this fails, the lock
        // lapses once the process exits, and another worker's stalled check puts the job back)
        await job
          .moveToWait(token)
          .catch((err: Error) => this.logger.warn(`requeueing ${requestId} failed: ${err.message}`));
        throw new WaitingError();
      }
    } finally {
      span.end();
      this.active.delete(requestId);
      this.deps.touch(this.spec.id);
      if (this.isIdle()) this.deps.onIdle();
    }
    await writer.settle();
  }

  /**
   * The job's spans in the trace its payload names (the API's `generate`): its wait in the queue, from the API's
   * enqueueing (that machine's clock) until this worker took it, and its processing here, returned to be ended with
   * the context its children take.
   */
  private traceJob(data: GenerateJob, attempt: number): { span: Span; context: Context } {
    const parent = contextFrom(data);
    const now = Date.now();
    const attributes = { [ATTR.model]: this.spec.id, [ATTR.requestId]: data.requestId, [ATTR.attempt]: attempt };
    recordSpan('queue wait', parent, data.queuedAt, now, {
      ...attributes,
      [ATTR.queue]: `generate:${this.spec.id}`,
    });
    const span = tracer.startSpan(
      'process',
      { kind: SpanKind.CONSUMER, startTime: now, attributes: { ...attributes, [ATTR.worker]: this.deps.workerId } },
      parent,
    );
    return { span, context: trace.setSpan(parent, span) };
  }
}

/**
 * A finished request's time in the engine as spans under its processing: waiting for a batch slot, its prefill (up
 * to its first token) and its decode (the rest), from the timeline the engine thread measured, never a span per step.
 */
function traceEngine(parent: Context, t: EngineTimeline): void {
  recordSpan('engine queue', parent, t.submittedAt, t.admittedAt);
  recordSpan('prefill', parent, t.admittedAt, t.firstTokenAt, { [ATTR.inputTokens]: t.inputTokens });
  recordSpan('decode', parent, t.firstTokenAt, t.endedAt, { [ATTR.outputTokens]: t.generatedTokens });
}
