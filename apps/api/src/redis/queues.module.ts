/**
 * The API's BullMQ setup: the connection and prefix from the config, and the fixed `control` queue for
 * `@InjectQueue`. The per-model generate queues (`generate:<model>`) are not registered here: their names are model
 * ids known only at request time, so RedisService.queue() creates each on demand (and closes them at shutdown).
 */
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Module } from '@nestjs/common';
import { CONTROL_QUEUE, failFastOptions, RedisNames } from '@switchyard/protocol';
import { API_CONFIG, ApiConfig } from '../config/api-config';

/** The longest a request waits on one queue write before it gets a 503. */
export const QUEUE_TIMEOUT_MS = 3000;

@Module({})
export class QueuesModule {
  static forRoot(): DynamicModule {
    const control = BullModule.registerQueue({ name: CONTROL_QUEUE });
    return {
      module: QueuesModule,
      imports: [
        BullModule.forRootAsync({
          inject: [API_CONFIG],
          useFactory: (config: ApiConfig) => ({
            // fail fast: a queue write while Redis is unreachable is a 503 within QUEUE_TIMEOUT_MS, not a hang
            connection: failFastOptions(config.redisUrl, QUEUE_TIMEOUT_MS),
            prefix: new RedisNames(config.redisPrefix).controlPrefix,
          }),
        }),
        control,
      ],
      exports: [control],
    };
  }
}
