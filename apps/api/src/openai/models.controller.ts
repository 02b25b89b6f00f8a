import { Controller, Get, Param, Req } from '@nestjs/common';
import type { Request } from 'express';
import type { ModelEntity } from '../registry/model.entity';
import type { Principal } from '../auth/api-keys.service';
import { principalOf } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { ApiRoute } from '../docs/api-route';
import { ModelRegistry } from '../registry/model-registry.service';
import { ModelList, OpenAiModel } from './openai.schemas';
import { z } from 'zod';

/** OpenAI's model object for a registry row. */
function openAiModel(row: ModelEntity): OpenAiModel {
  return { id: row.id, object: 'model', created: Math.floor(row.createdAt.getTime() / 1000), owned_by: 'switchyard' };
}

function allowed(principal: Principal, id: string): boolean {
  return principal.allowedModels === null || principal.allowedModels.includes(id);
}

/**
 * OpenAI's `GET /v1/models` and `GET /v1/models/{model}`: the enabled models of the registry that the caller's key
 * may use. A model outside the key's `allowed_models` gets 403 `model_not_allowed`, whether it exists or not, as
 * on the generation routes: the answer says nothing about the models the key cannot see.
 */
@Controller('v1')
export class ModelsController {
  constructor(private readonly registry: ModelRegistry) {}

  @Get('models')
  @ApiRoute({
    tag: 'openai',
    summary: 'List the models',
    description: "The enabled models of the registry that the key's `allowed_models` lets it use.",
    operationId: 'listModels',
    responses: { 200: { description: 'The models.', content: { 'application/json': { schema: ModelList } } } },
    errors: ['Unauthorized', 'Forbidden', 'Internal', 'Unavailable'],
  })
  async list(@Req() req: Request): Promise<ModelList> {
    const principal = principalOf(req);
    const rows = (await this.registry.list()).filter((row) => allowed(principal, row.id));
    return { object: 'list', data: rows.map(openAiModel) };
  }

  @Get('models/:model')
  @ApiRoute({
    tag: 'openai',
    summary: 'Describe one model',
    description:
      "An enabled model of the registry, as `GET /v1/models` lists it; 403 for a model outside the key's " +
      '`allowed_models`, whether it exists or not.',
    operationId: 'retrieveModel',
    params: z.object({ model: z.string().meta({ description: 'The model id.' }) }),
    responses: { 200: { description: 'The model.', content: { 'application/json': { schema: OpenAiModel } } } },
    errors: ['Unauthorized', 'ModelForbidden', 'ModelNotFound', 'Internal', 'Unavailable'],
  })
  async retrieve(@Param('model') id: string, @Req() req: Request) {
    if (!allowed(principalOf(req), id)) {
      throw new ApiError(403, 'model_not_allowed', `this key may not use model "${id}"`);
    }
    const row = await this.registry.record(id);
    if (!row?.enabled) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered or not enabled`);
    return openAiModel(row);
  }
}
