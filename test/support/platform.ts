/**
 * End-to-end harness for the worker: real worker processes (dist/apps/gpu-worker/src/main.js) against the real
 * Redis, each test under its own key prefix. It enqueues jobs the way the API does, reads the token streams,
 * sends control commands and cancellations, and waits on heartbeats and pool events (never on sleeps).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { defaultParameters, GenerationParameters } from '@switchyard/batching';
import {
  ControlCommand,
  decodeStreamEntry,
  GENERATE_JOB_OPTIONS,
  GenerateJob,
  Heartbeat,
  ModelSpec,
  PoolEvent,
  RedisNames,
  StreamEvent,
} from '@switchyard/protocol';
import { MetricsSnapshot, parseMetricsSnapshot, redisOptions } from '@switchyard/protocol';
import { REPO_ROOT } from './repo';

export const REDIS_URL = process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const WORKER_MAIN = join(REPO_ROOT, 'dist/apps/gpu-worker/src/main.js');

export function modelSpec(id: string, path: string, pinned = false): ModelSpec {
  return { id, path, pinned, maxInputTokens: null, maxTotalTokens: null, quantization: null };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface WorkerProcess {
  id: string;
  child: ChildProcess;
  /** Everything the worker printed. */
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
}

export class Platform {
  readonly names = new RedisNames(`sy-test-${randomUUID().slice(0, 8)}:`);
  readonly redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  private readonly queues = new Map<string, Queue<GenerateJob>>();
  private readonly control: Queue<ControlCommand>;
  readonly workers: WorkerProcess[] = [];

  constructor() {
    this.control = new Queue(this.names.controlQueue, {
      connection: redisOptions(REDIS_URL),
      prefix: this.names.controlPrefix,
    });
  }

  /** Starts a worker process; resolves once its heartbeat is in Redis. */
  async startWorker(id: string, args: string[] = []): Promise<WorkerProcess> {
    const child = spawn(
      process.execPath,
      [
        WORKER_MAIN,
        '--worker-id',
        id,
        '--redis-url',
        REDIS_URL,
        '--redis-prefix',
        this.names.prefix,
        '--intra-op-threads',
        '1',
        '--heartbeat-interval',
        '200ms',
        ...args,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | string>((resolve) =>
      child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)),
    );
    const worker: WorkerProcess = { id, child, output: () => output, exited };
    this.workers.push(worker);
    await Promise.race([
      waitFor(`worker ${id}'s heartbeat`, () => this.heartbeat(id)),
      exited.then((code) => {
        throw new Error(`worker ${id} exited (${code}) during start-up:\n${output}`);
      }),
    ]);
    return worker;
  }

  async heartbeat(workerId: string): Promise<Heartbeat | undefined> {
    const raw = await this.redis.get(this.names.worker(workerId));
    return raw ? (JSON.parse(raw) as Heartbeat) : undefined;
  }

  /** Waits until a worker's heartbeat says the model is loaded. */
  waitForLoaded(workerId: string, model: string, timeoutMs = 60_000): Promise<Heartbeat> {
    return waitFor(
      `${model} loaded on ${workerId}`,
      async () => {
        const beat = await this.heartbeat(workerId);
        return beat?.models.some((m) => m.id === model && m.state === 'loaded') ? beat : undefined;
      },
      timeoutMs,
    );
  }

  async events(): Promise<PoolEvent[]> {
    const raw = await this.redis.lrange(this.names.events, 0, -1);
    return raw.map((e) => JSON.parse(e) as PoolEvent).reverse();
  }

  /** The worker's metrics snapshot as it published it (prom-client's getMetricsAsJSON), if it did and it parses. */
  async metrics(workerId: string): Promise<MetricsSnapshot | undefined> {
    const raw = await this.redis.get(this.names.metrics(workerId));
    return (raw && parseMetricsSnapshot(raw)) || undefined;
  }

  sendControl(command: ControlCommand): Promise<unknown> {
    return this.control.add(command.type, command, { removeOnComplete: true });
  }

  /** A command addressed to one worker, on its own command queue (as placement sends them). */
  async sendCommand(workerId: string, command: ControlCommand): Promise<void> {
    const queue = new Queue<ControlCommand>(workerId, {
      connection: redisOptions(REDIS_URL),
      prefix: this.names.workerCommandPrefix,
    });
    await queue.add(command.type, command, { removeOnComplete: true });
    await queue.close();
  }

  queue(model: string): Queue<GenerateJob> {
    let queue = this.queues.get(model);
    if (!queue) {
      queue = new Queue(model, { connection: redisOptions(REDIS_URL), prefix: this.names.generatePrefix });
      this.queues.set(model, queue);
    }
    return queue;
  }

  /** Queues a request as the API does; returns its id. */
  async enqueue(
    model: string,
    inputIds: number[],
    parameters: Partial<GenerationParameters> = {},
    delayMs = 0,
    requestId: string = randomUUID(),
    extra: Pick<GenerateJob, 'keepAliveMs'> = {},
  ): Promise<string> {
    const job: GenerateJob = {
      requestId,
      model,
      inputIds,
      parameters: defaultParameters({ details: false, ...parameters }),
      queuedAt: Date.now(),
      ...extra,
    };
    await this.queue(model).add('generate', job, { ...GENERATE_JOB_OPTIONS, jobId: requestId, delay: delayMs });
    return requestId;
  }

  /**
   * Reads a request's stream to its end and returns the last attempt's events. `onEvent` sees every entry as
   * it arrives (to cancel mid-stream, say).
   */
  async readStream(
    requestId: string,
    timeoutMs = 120_000,
    onEvent?: (event: StreamEvent) => void,
  ): Promise<StreamEvent[]> {
    const reader = this.redis.duplicate();
    const key = this.names.stream(requestId);
    const deadline = Date.now() + timeoutMs;
    let lastId = '0';
    const byAttempt = new Map<number, StreamEvent[]>();
    try {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`stream ${requestId} did not end within ${timeoutMs} ms`);
        const reply = await reader.xread('COUNT', 1000, 'BLOCK', Math.min(left, 1000), 'STREAMS', key, lastId);
        if (!reply) continue;
        for (const [, entries] of reply) {
          for (const [id, fields] of entries) {
            lastId = id;
            const event = decodeStreamEntry(fields);
            if (!event) continue;
            onEvent?.(event);
            const list = byAttempt.get(event.attempt) ?? [];
            list.push(event);
            byAttempt.set(event.attempt, list);
            if (event.type === 'final' || event.type === 'error') return list;
          }
        }
      }
    } finally {
      reader.disconnect();
    }
  }

  /** Cancels a request as the API does: the key, the pub/sub message, and the job if it has not started. */
  async cancel(model: string, requestId: string): Promise<void> {
    await this.redis.set(this.names.cancel(requestId), '1', 'EX', 300);
    await this.redis.publish(this.names.cancelChannel, requestId);
    await this.queue(model)
      .remove(requestId)
      .catch(() => undefined);
  }

  /** Sends SIGTERM to every worker still running, waits for them, and removes this test's keys. */
  async close(): Promise<void> {
    for (const w of this.workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
    await Promise.all(this.workers.map((w) => w.exited));
    await Promise.all([...this.queues.values(), this.control].map((q) => q.close()));
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.names.prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await this.redis.del(...keys);
    } while (cursor !== '0');
    await this.redis.quit();
  }
}

/** The generated ids of a finished stream (its token events), or the error it ended with. */
export function generatedIds(events: StreamEvent[]): number[] {
  const last = events.at(-1);
  if (last?.type === 'error') throw new Error(`request failed: ${last.errorType}: ${last.message}`);
  if (last?.type !== 'final') throw new Error('stream has no final event');
  const ids = events.flatMap((e) => (e.type === 'token' ? [e.token.id] : []));
  if (last.lastToken) ids.push(last.lastToken.token.id);
  return ids;
}
