import { Controller, Get, Inject } from '@nestjs/common';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { InferenceService } from '../generation/inference.service';
import { Public } from '../auth/auth.guard';
import { ApiRoute } from '../docs/api-route';
import { Info } from '../tgi/tgi.schemas';

/** TGI's `GET /info`: the default model and the limits it is served under. */
@Public()
@Controller()
export class InfoController {
  constructor(
    private readonly inference: InferenceService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Get('info')
  @ApiRoute({
    tag: 'service',
    summary: 'The default model and its limits',
    description: "TGI's `/info`: the default model and the limits requests are validated against.",
    operationId: 'info',
    responses: { 200: { description: 'The information.', content: { 'application/json': { schema: Info } } } },
    errors: ['ModelNotFound', 'Internal', 'Unavailable'],
  })
  async info(): Promise<Info> {
    const model = await this.inference.model(undefined);
    return {
      model_id: model.spec.id,
      model_sha: null,
      model_dtype: 'float32',
      model_device_type: this.config.executionProvider,
      model_pipeline_tag: 'text-generation',
      max_concurrent_requests: this.config.maxConcurrentRequests,
      max_best_of: this.config.maxBestOf,
      max_stop_sequences: this.config.maxStopSequences,
      max_input_tokens: model.limits.maxInputTokens,
      max_total_tokens: model.limits.maxTotalTokens,
      max_top_n_tokens: this.config.maxTopNTokens,
      validation_workers: 1,
      max_client_batch_size: 1,
      router: 'switchyard',
      version: this.config.version,
      sha: null,
      docker_label: null,
    };
  }
}
