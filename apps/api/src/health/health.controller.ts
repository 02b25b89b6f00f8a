import { Controller, Get, HttpCode, Inject } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { Public } from '../auth/auth.guard';

/** TGI's readiness probe: 200 once a live worker has the default model loaded, 503 before that. */
@Public()
@Controller()
export class HealthController {
  constructor(
    private readonly workers: WorkerDirectory,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Get('health')
  @HttpCode(200)
  async health(): Promise<void> {
    const { loaded, live } = await this.workers.holders(this.config.modelName);
    if (loaded.length > 0) return;
    throw ApiError.unavailable(
      live === 0
        ? 'no worker is running'
        : `no live worker has ${this.config.modelName} loaded yet (${live} worker(s) up)`,
    );
  }
}
