/** The worker's Nest module: its config, metrics, model pool and placement. No HTTP, no database. */
import { DynamicModule, Module } from '@nestjs/common';
import { WORKER_CONFIG, WorkerConfig } from '@switchyard/config';
import { WorkerMetrics } from './metrics/worker-metrics';
import { ModelPoolService } from './models/model-pool.service';
import { PlacementService } from './placement/placement.service';

@Module({})
export class WorkerModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      providers: [{ provide: WORKER_CONFIG, useValue: config }, WorkerMetrics, ModelPoolService, PlacementService],
    };
  }
}
