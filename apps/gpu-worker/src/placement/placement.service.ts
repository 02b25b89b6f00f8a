/**
 * Placement across workers, through Redis only:
 * - the heartbeat: `worker:<id>` (models, memory, batch and queue sizes) and `metrics:<id>`, with a TTL, and the
 *   worker's id in the `workers` index (`worker-registry.ts`);
 * - the shared `control` queue: one worker takes each command and sends a load to the live worker with the most
 *   free memory (itself, or through that worker's own command queue);
 * - this worker's command queue: loads and unloads addressed to it;
 * - replicas: a model whose oldest queued job waits past `--replica-queue-wait` asks for a load elsewhere;
 * - crash recovery: the jobs of a worker whose heartbeat lapsed run again at once (`orphan-recovery.ts`).
 */
import { InjectQueue, OnWorkerEvent, Processor, WorkerHost } from '@nestjs/bullmq';
import { Inject, Logger, OnApplicationBootstrap, BeforeApplicationShutdown } from '@nestjs/common';
import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Job, Queue, Worker } from 'bullmq';
import {
  COMMAND_JOB_OPTIONS,
  CONTROL_QUEUE,
  ControlCommand,
  Heartbeat,
  HeartbeatModel,
  ModelSpec,
  parseControlCommand,
  parseHeartbeat,
  readWorkerEntries,
  removeWorkerEntries,
  writeWorkerEntries,
} from '@switchyard/protocol';
import { formatBytes } from '@switchyard/models';
import { ATTR, carrierOf, type Context, contextFrom, inSpan, type Span, SpanKind } from '@switchyard/telemetry';
import { WORKER_CONFIG, WorkerConfig } from '@switchyard/config';
import { ModelPoolService } from '../models/model-pool.service';
import { redisOptions } from '@switchyard/protocol';
import { INCARNATION } from './incarnation';
import { OrphanRecovery } from './orphan-recovery';

type LoadCommand = Extract<ControlCommand, { type: 'load' }>;

/**
 * The shared control queue's consumer is this class's `process` (a WorkerHost), one command at a time as before. It
 * starts only once the model pool is up and this worker has published its first heartbeat (`autorun: false`, run in
 * onApplicationBootstrap), and closes at the first step of shutdown, beside the drain (BullModule alone would close
 * it only after every shutdown hook, taking commands meanwhile). This worker's own command queue is named by its id,
 * known only at run time, so its consumer stays a BullMQ Worker made here.
 */
@Processor(CONTROL_QUEUE, { concurrency: 1, autorun: false })
export class PlacementService extends WorkerHost implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Placement');
  private readonly startedAt = Date.now();
  private commandConsumer: Worker<ControlCommand> | null = null;
  private readonly commandQueues = new Map<string, Queue<ControlCommand>>();
  private timer: NodeJS.Timeout | null = null;
  private beating: Promise<void> = Promise.resolve();
  private draining = false;
  /** Set once the worker has removed its heartbeat at shutdown. */
  private left = false;
  /** Event-loop delay: a worker that blocks its loop too long loses its BullMQ locks. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  private worstLoopDelayMs = 0;
  /** When a replica was last asked for, per model. */
  private readonly replicaAsked = new Map<string, number>();
  private readonly recovery: OrphanRecovery;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: WorkerConfig,
    private readonly models: ModelPoolService,
    @InjectQueue(CONTROL_QUEUE) private readonly control: Queue<ControlCommand>,
  ) {
    super();
    this.recovery = new OrphanRecovery(models.redis, models.names, config.workerId);
  }

  async onApplicationBootstrap(): Promise<void> {
    const { names } = this.models;
    const connection = redisOptions(this.config.redisUrl);
    await this.models.start();
    this.loopDelay.enable();
    await this.beat();
    this.timer = setInterval(() => this.beatSoon(), this.config.heartbeatIntervalMs);
    // a model that changes tier is published at once: the API routes by what the heartbeats say
    this.models.onChange = () => this.beatSoon();
    this.commandConsumer = new Worker<ControlCommand>(
      this.config.workerId,
      (job) => this.execute(parseControlCommand(job.data)),
      {
        connection,
        prefix: names.workerCommandPrefix,
        concurrency: 4,
      },
    );
    this.commandConsumer.on('error', (err) => this.onError(err));
    this.commandConsumer.on('failed', (job, err) => this.onFailed(job, err));
    this.worker.run().catch((err: Error) => this.logger.error(`control consumer stopped: ${err.message}`));
    for (const spec of this.config.preload) {
      void this.models.load(spec).catch(() => undefined); // logged and recorded by load()
    }
    this.logger.log(
      `worker ${this.config.workerId} up: ${this.config.preload.length} models to preload, device memory ${formatBytes(this.config.deviceMemory)}`,
    );
  }

  /** SIGTERM: leave the placement (heartbeat says draining), stop taking commands, then drain the models. */
  async beforeApplicationShutdown(): Promise<void> {
    // stop fetching first, then say so: a job queued after the draining heartbeat is never taken here
    await this.models.pause();
    this.draining = true;
    await this.beat();
    // the command consumers close while the models drain: a load command in flight (up to --place-timeout)
    // must not hold the drain, whose deadline counts from the signal
    await Promise.all([this.worker.close(), this.commandConsumer?.close(), this.models.drain()]);
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    this.loopDelay.disable();
    this.logger.log(`worst event-loop delay since start: ${this.worstLoopDelayMs.toFixed(1)} ms`);
    const { redis, names } = this.models;
    // the models unloading after this must not write the heartbeat back
    this.left = true;
    await removeWorkerEntries(redis, names, this.config.workerId).catch(() => undefined);
    // the control queue is BullModule's, which closes it
    await Promise.all([...this.commandQueues.values()].map((q) => q.close()));
  }

  /** A command on the shared control queue (the WorkerHost's consumer). */
  process(job: Job<ControlCommand>): Promise<void> {
    return this.place(job);
  }

  @OnWorkerEvent('error')
  onError(err: Error): void {
    this.logger.error(`control consumer: ${err.message}`);
  }

  @OnWorkerEvent('failed')
  onFailed(job: Job<ControlCommand> | undefined, err: Error): void {
    this.logger.error(`control command ${job?.name ?? ''} failed: ${err.message}`);
  }

  /** Queues a heartbeat behind the one being written (beats never overlap); none once the worker has left. */
  private beatSoon(): void {
    if (this.left) return;
    this.beating = this.beating.then(() => this.beat());
  }

  /** A command on the shared control queue: decide which worker runs it. */
  private async place(job: Job<ControlCommand>): Promise<void> {
    const command = parseControlCommand(job.data); // a malformed command fails its job (logged by onFailed)
    const beats = await this.liveWorkers();
    if (command.type === 'unload') {
      for (const beat of beats) {
        if (beat.models.some((m) => m.id === command.model)) await this.send(beat.id, command);
      }
      return;
    }
    // in the trace of the request that asked for the load, if it is traced; the target's load joins it
    const attributes = { [ATTR.model]: command.spec.id, [ATTR.reason]: command.reason };
    await inSpan(
      'load command',
      contextFrom(command),
      attributes,
      (ctx, span) => this.placeLoad(command, beats, ctx, span),
      SpanKind.CONSUMER,
    );
  }

  /** A load command: sent on to the live worker that should take it, unless one holds the model already. */
  private async placeLoad(command: LoadCommand, beats: Heartbeat[], ctx: Context, span: Span): Promise<void> {
    const { spec } = command;
    const stateOn = (b: Heartbeat) => b.models.find((m) => m.id === spec.id)?.state;
    const holders = beats.filter((b) => stateOn(b) === 'loaded' || stateOn(b) === 'loading').map((b) => b.id);
    span.setAttribute(ATTR.holders, holders.length);
    if (command.reason !== 'replica' && holders.length > 0) return; // already placed
    const excluded = new Set([...holders, ...(command.exclude ?? [])]);
    const candidates = beats.filter((b) => !b.draining && !excluded.has(b.id));
    if (candidates.length === 0) {
      if (command.reason !== 'replica') this.logger.warn(`no live worker can take model ${spec.id}`);
      return;
    }
    // a worker that has the model parked brings it back in milliseconds; otherwise, the most free memory
    const free = (b: Heartbeat) => b.memory.budget - b.memory.used;
    const parked = (b: Heartbeat) => (stateOn(b) === 'parked' ? 1 : 0);
    candidates.sort((a, b) => parked(b) - parked(a) || free(b) - free(a) || a.id.localeCompare(b.id));
    const target = candidates[0].id;
    span.setAttribute(ATTR.target, target);
    this.logger.log(`placing ${spec.id} (${command.reason}) on worker ${target}`);
    await this.send(target, { ...command, ...carrierOf(ctx) });
  }

  private async send(workerId: string, command: ControlCommand): Promise<void> {
    if (workerId === this.config.workerId) {
      await this.execute(command);
      return;
    }
    let queue = this.commandQueues.get(workerId);
    if (!queue) {
      queue = new Queue(workerId, {
        connection: redisOptions(this.config.redisUrl),
        prefix: this.models.names.workerCommandPrefix,
      });
      this.commandQueues.set(workerId, queue);
    }
    await queue.add(command.type, command, COMMAND_JOB_OPTIONS);
  }

  /** A command for this worker. A load that fails is logged and recorded, not retried. */
  private async execute(command: ControlCommand): Promise<void> {
    if (this.draining) return;
    if (command.type === 'unload') {
      await this.models.pool.unload(command.model, 'unload');
      return;
    }
    await this.models.load(command.spec, contextFrom(command)).catch(() => undefined);
  }

  /** Heartbeats of the live workers, this one's fresh from memory. */
  private async liveWorkers(): Promise<Heartbeat[]> {
    const { redis, names } = this.models;
    const entries = await readWorkerEntries(redis, names, (id) => names.worker(id));
    const beats: Heartbeat[] = [await this.heartbeat()];
    for (const [id, value] of entries) {
      if (id === this.config.workerId) continue;
      const beat = parseHeartbeat(value); // null for a half-written or foreign value: not a worker
      if (beat) beats.push(beat);
    }
    return beats;
  }

  private async heartbeat(): Promise<Heartbeat> {
    const { pool } = this.models;
    // Every loaded model's queue is read at once: one round trip's wait per beat, not one per model.
    const entries = pool.list().filter((entry) => entry.state !== 'unloading');
    const beatState = (state: string): HeartbeatModel['state'] =>
      state === 'loaded' ? 'loaded' : state === 'parked' || state === 'parking' ? 'parked' : 'loading';
    const models: HeartbeatModel[] = await Promise.all(
      entries.map(async (entry): Promise<HeartbeatModel> => {
        const host = entry.state === 'loaded' ? pool.peek(entry.id) : undefined;
        const queue = host ? await host.queueStats().catch(() => ({ queued: 0, oldestQueuedMs: 0 })) : null;
        return {
          id: entry.id,
          state: beatState(entry.state),
          bytes: entry.bytes,
          pinned: entry.pinned,
          running: host?.engine.running ?? 0,
          waiting: host?.engine.waiting ?? 0,
          queued: queue?.queued ?? 0,
          oldestQueuedMs: queue?.oldestQueuedMs ?? 0,
          ...(host && {
            dtype: host.engine.info.dtype,
            quantize: host.engine.info.quantize,
            attention: host.engine.info.attention,
            kvDtype: host.engine.info.kvDtype,
          }),
        };
      }),
    );
    return {
      id: this.config.workerId,
      incarnation: INCARNATION,
      pid: process.pid,
      host: hostname(),
      startedAt: this.startedAt,
      at: Date.now(),
      memory: {
        used: pool.usedBytes,
        budget: pool.budgetBytes,
        parked: pool.parkedBytes,
        hostBudget: pool.hostBudgetBytes,
      },
      draining: this.draining,
      eventLoop: { maxMs: this.loopDelay.max / 1e6, worstMs: this.worstLoopDelayMs },
      models,
    };
  }

  /** Writes the heartbeat and the metrics snapshot, and asks for replicas of models whose queue waits too long. */
  private async beat(): Promise<void> {
    try {
      const maxMs = this.loopDelay.max / 1e6;
      this.worstLoopDelayMs = Math.max(this.worstLoopDelayMs, maxMs);
      const beat = await this.heartbeat();
      this.loopDelay.reset();
      const { redis, names, metrics } = this.models;
      metrics.eventLoopDelay.set(maxMs / 1000);
      metrics.deviceMemory.set({ kind: 'used' }, beat.memory.used);
      metrics.deviceMemory.set({ kind: 'budget' }, beat.memory.budget);
      for (const m of beat.models) {
        metrics.queueSize.set({ model: m.id }, m.queued + m.waiting);
        // steps set it too, but a batch emptied by cancellations takes no further step
        metrics.batchSize.set({ model: m.id }, m.running);
      }
      const ttl = this.config.heartbeatIntervalMs * 3;
      const snapshot = JSON.stringify(await metrics.registry.getMetricsAsJSON());
      await writeWorkerEntries(
        redis.multi(),
        names,
        beat.id,
        { heartbeat: JSON.stringify(beat), metrics: snapshot },
        ttl,
      ).exec();
      if (!this.draining) {
        await this.askForReplicas(beat);
        await this.recoverOrphans(beat);
      }
    } catch (err) {
      this.logger.warn(`heartbeat failed: ${(err as Error).message}`);
    }
  }

  /** Releases the jobs that workers whose heartbeat lapsed had taken from this worker's models' queues. */
  private async recoverOrphans(beat: Heartbeat): Promise<void> {
    const serving = beat.models.filter((m) => m.state === 'loaded').map((m) => m.id);
    const released = await this.recovery.recover(serving);
    if (released.length > 0) {
      this.logger.warn(
        `a worker died (its heartbeat lapsed, or it restarted) with ${released.length} request(s) running: they run again now (${released.join(', ')})`,
      );
    }
  }

  private async askForReplicas(beat: Heartbeat): Promise<void> {
    const now = Date.now();
    for (const m of beat.models) {
      if (m.state !== 'loaded' || m.oldestQueuedMs < this.config.replicaQueueWaitMs) continue;
      const last = this.replicaAsked.get(m.id) ?? 0;
      if (now - last < Math.max(10_000, this.config.replicaQueueWaitMs * 2)) continue;
      this.replicaAsked.set(m.id, now);
      const host = this.models.pool.peek(m.id);
      if (!host) continue;
      const spec: ModelSpec = { ...host.spec, pinned: false };
      this.logger.log(`model ${m.id}: oldest queued job waited ${m.oldestQueuedMs} ms, asking for a replica`);
      await this.control.add('load', { type: 'load', spec, reason: 'replica' }, COMMAND_JOB_OPTIONS);
    }
  }
}
