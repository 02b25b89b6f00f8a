import { Controller, Get } from '@nestjs/common';
import { ModelRegistry } from '../registry/model-registry.service';

/** OpenAI's `GET /v1/models`: the enabled models of the registry. */
@Controller('v1')
export class ModelsController {
  constructor(private readonly registry: ModelRegistry) {}

  @Get('models')
  async list() {
    const rows = await this.registry.list();
    return {
      object: 'list',
      data: rows.map((row) => ({
        id: row.id,
        object: 'model',
        created: Math.floor(row.createdAt.getTime() / 1000),
        owned_by: 'switchyard',
      })),
    };
  }
}
