/**
 * The API's Redis: one connection for commands, the Redis names, BullMQ queues per model (created on demand, once
 * each; queues.module.ts registers only the fixed control queue), and cancellation. The stream reader keeps its own
 * dedicated connection (stream-hub.ts). Commands a request waits on fail fast while Redis is unreachable (a 503
 * `service_unavailable`), rather than queueing until it returns.
 */
import { InjectQueue } from '@nestjs/bullmq';
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  COMMAND_JOB_OPTIONS,
  CONTROL_QUEUE,
  ControlCommand,
  GENERATE_JOB_OPTIONS,
  GenerateJob,
  RedisNames,
} from '@switchyard/protocol';
import { createRedis, failFastOptions } from '@switchyard/protocol';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { dependencyState } from '../health/dependencies';
import { QUEUE_TIMEOUT_MS } from './queues.module';

/** A Redis failure on the request path: the state learns of the outage, the client gets a 503. */
function unavailable(what: string, err: unknown): ApiError {
  dependencyState.markDown('redis', err);
  return ApiError.storeUnavailable(`cannot ${what}: Redis is unreachable; retry shortly`);
}

@Injectable()
export class RedisService implements OnApplicationShutdown {
  readonly names: RedisNames;
  readonly redis: Redis;
  private readonly queues = new Map<string, Queue<GenerateJob>>();

  constructor(
    @Inject(API_CONFIG) readonly config: ApiConfig,
    @InjectQueue(CONTROL_QUEUE) private readonly control: Queue<ControlCommand>,
  ) {
    this.names = new RedisNames(config.redisPrefix);
    this.redis = createRedis(config.redisUrl, 'switchyard-api', failFastOptions(config.redisUrl));
  }

  /** A fresh connection on the same server, for blocking reads. */
  duplicate(name: string): Redis {
    return createRedis(this.config.redisUrl, name);
  }

  /** A model's generate queue, made at its first use: the model ids are known only at request time, so these queues
   * cannot be registered with BullModule up front. */
  queue(model: string): Queue<GenerateJob> {
    let queue = this.queues.get(model);
    if (!queue) {
      queue = new Queue(model, {
        connection: failFastOptions(this.config.redisUrl, QUEUE_TIMEOUT_MS),
        prefix: this.names.generatePrefix,
      });
      this.queues.set(model, queue);
    }
    return queue;
  }

  async enqueue(job: GenerateJob): Promise<void> {
    try {
      await this.queue(job.model).add('generate', job, { ...GENERATE_JOB_OPTIONS, jobId: job.requestId });
    } catch (err) {
      throw unavailable('queue the request', err);
    }
  }

  /**
   * Jobs waiting in each generate queue this replica has used, and the default model's: what BullMQ's
   * `getWaitingCount` counts (its wait and paused lists), in one round trip. Read from Redis, so it is there with no
   * worker running: an autoscaler starting workers from zero reads it (through /metrics).
   */
  async waitingJobs(): Promise<Map<string, number>> {
    this.queue(this.config.modelName);
    const models = [...this.queues.keys()];
    const pipeline = this.redis.pipeline();
    for (const model of models) {
      const { keys } = this.queue(model);
      pipeline.llen(keys.wait).llen(keys.paused);
    }
    const replies = (await pipeline.exec()) ?? [];
    const counts = new Map<string, number>();
    models.forEach((model, i) => {
      const [wait, paused] = [replies[2 * i], replies[2 * i + 1]];
      const error = wait?.[0] ?? paused?.[0];
      if (error) throw error;
      counts.set(model, Number(wait?.[1] ?? 0) + Number(paused?.[1] ?? 0));
    });
    return counts;
  }

  async sendControl(command: ControlCommand): Promise<void> {
    try {
      await this.control.add(command.type, command, COMMAND_JOB_OPTIONS);
    } catch (err) {
      throw unavailable(`send the ${command.type} command`, err);
    }
  }

  /** The client went away: running rows stop at the next step, a job not yet started leaves its queue. */
  async cancel(model: string, requestId: string): Promise<void> {
    await this.redis
      .multi()
      .set(this.names.cancel(requestId), '1', 'EX', 300)
      .publish(this.names.cancelChannel, requestId)
      .exec();
    await this.queue(model)
      .remove(requestId)
      .catch(() => 0); // a running job is locked: the worker's row is cancelled instead
  }

  async onApplicationShutdown(): Promise<void> {
    // the control queue is BullModule's, which closes it
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.redis.quit().catch(() => undefined);
  }
}
