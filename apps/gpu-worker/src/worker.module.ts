/**
 * The worker's Nest module: its config, metrics, model pool and placement. No HTTP, no database. BullModule holds
 * the connection and the fixed `control` queue; the per-model generate queues and the per-worker command queues are
 * named at run time, so their consumers and queues are made where they are used (model-host.ts, placement.service.ts).
 */
import { BullModule } from '@nestjs/bullmq';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@switchyard/config';
import { CONTROL_QUEUE, RedisNames, redisOptions } from '@switchyard/protocol';
import { Tracing, TRACING_DISABLED, TracingModule } from '@switchyard/telemetry';
import { WorkerMetrics } from './metrics/worker-metrics';
import { ModelPoolService } from './models/model-pool.service';
import { PlacementService } from './placement/placement.service';

/** The process's config, global so that BullModule's async factory can inject it. */
@Global()
@Module({})
class WorkerConfigModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerConfigModule,
      providers: [{ provide: WORKER_CONFIG, useValue: config }],
      exports: [WORKER_CONFIG],
    };
  }
}

@Module({})
export class WorkerModule {
  static forRoot(config: WorkerConfig, tracing: Tracing = TRACING_DISABLED): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        WorkerConfigModule.forRoot(config),
        TracingModule.forRoot(tracing),
        BullModule.forRootAsync({
          inject: [WORKER_CONFIG],
          useFactory: (c: WorkerConfig) => ({
            connection: redisOptions(c.redisUrl),
            prefix: new RedisNames(c.redisPrefix).controlPrefix,
          }),
        }),
        BullModule.registerQueue({ name: CONTROL_QUEUE }),
      ],
      providers: [WorkerMetrics, ModelPoolService, PlacementService],
    };
  }
}
