import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { Response } from 'express';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { Public } from '../auth/auth.guard';
import { ApiRoute } from '../docs/api-route';
import { Degraded, Unhealthy } from '../tgi/tgi.schemas';
import { dependencyState, withTimeout } from './dependencies';

/** How long /health waits for the worker directory before it says Redis does not answer. */
const DIRECTORY_TIMEOUT_MS = 500;

/**
 * TGI's readiness probe, which always answers within a second: 200 when requests can be served (a live worker has
 * the default model loaded and Redis answers), 503 otherwise, with `{error, error_type: "unhealthy", missing}`
 * naming what is missing (`redis`, `worker`). Postgres being down does not fail it: known keys and models are
 * served from their last good values meanwhile, so pulling the replica out of a load balancer would only turn a
 * degraded service into none; the 200's body then says `{"status": "degraded", "missing": ["postgres"]}`. With a
 * `--place-timeout`, no worker running is a degraded state too: requests wait for the worker an autoscaler
 * starts, and a replica that failed its readiness probe would never receive the request that makes it start one.
 */
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly workers: WorkerDirectory,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Get('health')
  @ApiRoute({
    tag: 'service',
    summary: 'Readiness',
    description:
      'Ready once a live worker has the default model loaded and Redis answers; always answers within a second. ' +
      'Postgres being down does not make it fail: known keys and models are served from their last good values ' +
      'meanwhile.',
    operationId: 'health',
    responses: {
      200: {
        description:
          'Ready; the body is empty, or says `degraded` while Postgres is unreachable or, with a ' +
          '`--place-timeout`, while no worker is running.',
        content: { 'application/json': { schema: Degraded } },
      },
      503: {
        description: 'Not ready: Redis does not answer, or no live worker has the default model loaded.',
        content: { 'application/json': { schema: Unhealthy } },
      },
    },
  })
  async health(@Res() res: Response): Promise<void> {
    const missing: string[] = [];
    const reasons: string[] = [];
    let cold = false;
    if (!dependencyState.isUp('redis')) {
      missing.push('redis');
      reasons.push(dependencyState.describe()!);
    } else {
      try {
        const { loaded, live } = await withTimeout(
          this.workers.holders(this.config.modelName),
          DIRECTORY_TIMEOUT_MS,
          'Redis',
        );
        if (loaded.length === 0 && live === 0 && this.config.placeTimeoutMs > 0) {
          cold = true;
        } else if (loaded.length === 0) {
          missing.push('worker');
          reasons.push(
            live === 0
              ? 'no worker is running'
              : `no live worker has ${this.config.modelName} loaded yet (${live} worker(s) up)`,
          );
        }
      } catch (err) {
        missing.push('redis');
        reasons.push((err as Error).message);
      }
    }
    const degraded = [...(dependencyState.isUp('postgres') ? [] : ['postgres']), ...(cold ? ['worker'] : [])];
    if (missing.length > 0) {
      res.status(503).json({ error: reasons.join('; '), error_type: 'unhealthy', missing: [...missing, ...degraded] });
    } else if (degraded.length > 0) {
      res.status(200).json({ status: 'degraded', missing: degraded });
    } else {
      res.status(200).end();
    }
  }
}
