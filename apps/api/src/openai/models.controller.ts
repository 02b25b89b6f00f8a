import { Controller, Get, Param } from '@nestjs/common';
import { ApiError } from '../common/api-error';
import type { ModelEntity } from '@switchyard/models';
import { ModelRegistry } from '../registry/model-registry.service';

/** OpenAI's model object for a registry row. */
function openAiModel(row: ModelEntity) {
  return { id: row.id, object: 'model', created: Math.floor(row.createdAt.getTime() / 1000), owned_by: 'switchyard' };
}

/** OpenAI's `GET /v1/models` and `GET /v1/models/{model}`: the enabled models of the registry. */
@Controller('v1')
export class ModelsController {
  constructor(private readonly registry: ModelRegistry) {}

  @Get('models')
  async list() {
    const rows = await this.registry.list();
    return { object: 'list', data: rows.map(openAiModel) };
  }

  @Get('models/:model')
  async retrieve(@Param('model') id: string) {
    const row = await this.registry.record(id);
    if (!row?.enabled) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered or not enabled`);
    return openAiModel(row);
  }
}
