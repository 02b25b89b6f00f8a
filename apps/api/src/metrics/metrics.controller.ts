import { Controller, Get, Header } from '@nestjs/common';
import { z } from 'zod';
import { RedisService } from '../redis/redis.service';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { StreamHub } from '../generation/stream-hub';
import { ApiMetrics } from './api-metrics';
import { clusterRegistry } from './cluster-metrics';
import { Public } from '../auth/auth.guard';
import { ApiRoute } from '../docs/api-route';

/** `GET /metrics`: the API's request metrics and every live worker's batch and pool metrics, in one text. */
@Public()
@Controller()
export class MetricsController {
  constructor(
    private readonly metrics: ApiMetrics,
    private readonly workers: WorkerDirectory,
    private readonly hub: StreamHub,
    private readonly redis: RedisService,
  ) {}

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  @ApiRoute({
    tag: 'service',
    summary: 'Prometheus metrics',
    description:
      "TGI's request metrics (`tgi_request_*`), Switchyard's own (fallbacks among them) and every live worker's " +
      "batch and pool metrics, in Prometheus' text format. `switchyard_queue_waiting_jobs` is read from Redis " +
      'at each scrape: the queue depth an autoscaler scales the workers on.',
    operationId: 'metrics',
    responses: {
      200: { description: 'The metrics.', content: { 'text/plain; version=0.0.4': { schema: z.string() } } },
    },
    errors: ['Internal'],
  })
  async render(): Promise<string> {
    this.metrics.openStreams.set(this.hub.open);
    // Redis down: no queue series, rather than stale counts (switchyard_dependency_up says why)
    const waiting = await this.redis.waitingJobs().catch(() => new Map<string, number>());
    this.metrics.queueWaiting.reset();
    for (const [model, jobs] of waiting) this.metrics.queueWaiting.set({ model }, jobs);
    const workers = await this.workers.metrics();
    return clusterRegistry(this.metrics.registry, workers).metrics();
  }
}
