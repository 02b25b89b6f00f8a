/**
 * The API's Redis: one connection for commands, the Redis names, BullMQ queues per model (created once), and
 * cancellation. The stream reader keeps its own dedicated connection (stream-hub.ts).
 */
import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import {
  COMMAND_JOB_OPTIONS,
  ControlCommand,
  GENERATE_JOB_OPTIONS,
  GenerateJob,
  RedisNames,
} from '@switchyard/batching';
import { createRedis, redisOptions } from '../../../gpu-worker/src/redis/redis-connection';
import { API_CONFIG, ApiConfig } from '../config/api-config';

@Injectable()
export class RedisService implements OnApplicationShutdown {
  readonly names: RedisNames;
  readonly redis: Redis;
  private readonly queues = new Map<string, Queue<GenerateJob>>();
  private readonly control: Queue<ControlCommand>;

  constructor(@Inject(API_CONFIG) readonly config: ApiConfig) {
    this.names = new RedisNames(config.redisPrefix);
    this.redis = createRedis(config.redisUrl, 'switchyard-api');
    this.control = new Queue(this.names.controlQueue, {
      connection: redisOptions(config.redisUrl),
      prefix: this.names.controlPrefix,
    });
  }

  /** A fresh connection on the same server, for blocking reads. */
  duplicate(name: string): Redis {
    return createRedis(this.config.redisUrl, name);
  }

  queue(model: string): Queue<GenerateJob> {
    let queue = this.queues.get(model);
    if (!queue) {
      queue = new Queue(model, { connection: redisOptions(this.config.redisUrl), prefix: this.names.generatePrefix });
      this.queues.set(model, queue);
    }
    return queue;
  }

  async enqueue(job: GenerateJob): Promise<void> {
    await this.queue(job.model).add('generate', job, { ...GENERATE_JOB_OPTIONS, jobId: job.requestId });
  }

  async sendControl(command: ControlCommand): Promise<void> {
    await this.control.add(command.type, command, COMMAND_JOB_OPTIONS);
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
    await Promise.all([...this.queues.values(), this.control].map((q) => q.close()));
    await this.redis.quit().catch(() => undefined);
  }
}
