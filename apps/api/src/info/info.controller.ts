import { Controller, Get, Inject } from '@nestjs/common';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { SERVED_MODEL, ServedModel } from '../model/served-model';

/** TGI's `GET /info`: what is served and under which limits. */
@Controller()
export class InfoController {
  constructor(
    @Inject(SERVED_MODEL) private readonly model: ServedModel,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Get('info')
  info() {
    const { config } = this.model.description;
    return {
      model_id: this.model.name,
      model_sha: null,
      model_pipeline_tag: 'text-generation',
      max_input_tokens: config.maxPositions - 1,
      max_total_tokens: config.maxPositions,
      router: 'switchyard',
      version: this.config.version,
      sha: null,
      docker_label: null,
    };
  }
}
