/** `/admin/keys`: create (the plaintext key is in the answer, once), list (no plaintext, no hash), revoke. */
import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { z } from 'zod';
import { RequireScope } from '../auth/auth.guard';
import { ApiKeyEntity } from '../auth/api-key.entity';
import { ApiKeysService } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import { parseWith } from '../common/schema';
import { ApiRoute } from '../docs/api-route';
import { adminErrors, ApiKey, ApiKeyParams, CreateApiKeyRequest, CreatedApiKey } from './admin.schemas';

function view(row: ApiKeyEntity): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    allowed_models: row.allowedModels,
    rpm_limit: row.rpmLimit,
    tpm_limit: row.tpmLimit,
    expires_at: row.expiresAt?.toISOString() ?? null,
    revoked_at: row.revokedAt?.toISOString() ?? null,
    last_used_at: row.lastUsedAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

@RequireScope('admin')
@Controller('admin/keys')
export class KeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @HttpCode(201)
  @ApiRoute({
    tag: 'admin',
    summary: 'Create an API key',
    description:
      'Makes a key (`sy-` and 43 random characters) and answers it once: only its sha256 hash is stored. ' +
      'Without `scopes` it may generate (`inference`) but not administer. 422 for an unknown field, a blank or too ' +
      'long `name`, `scopes` other than a non-empty list of `inference` and `admin`, an `allowed_models` entry that ' +
      'is not a model id or repeats, a limit that is not a positive integer, or an `expires_at` that is not a date.',
    operationId: 'createApiKey',
    body: CreateApiKeyRequest,
    responses: {
      201: {
        description: 'The key, with its plaintext: keep it now.',
        content: { 'application/json': { schema: CreatedApiKey } },
      },
    },
    errors: adminErrors('BadRequest', 'PayloadTooLarge', 'Validation'),
  })
  async create(@Body() raw: unknown): Promise<CreatedApiKey> {
    const body = parseWith(CreateApiKeyRequest, raw);
    const { key, row } = await this.keys.create({
      name: body.name,
      scopes: body.scopes,
      allowedModels: body.allowed_models ?? null,
      rpmLimit: body.rpm_limit ?? null,
      tpmLimit: body.tpm_limit ?? null,
      expiresAt: body.expires_at,
    });
    return { key, ...view(row) };
  }

  @Get()
  @ApiRoute({
    tag: 'admin',
    summary: 'List the API keys',
    description: 'Every key, revoked and expired ones included, oldest first: never a plaintext, nor a hash.',
    operationId: 'listApiKeys',
    responses: { 200: { description: 'The keys.', content: { 'application/json': { schema: z.array(ApiKey) } } } },
    errors: adminErrors(),
  })
  async list(): Promise<ApiKey[]> {
    return (await this.keys.list()).map(view);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiRoute({
    tag: 'admin',
    summary: 'Revoke an API key',
    description:
      'Revokes the key: within a second no API replica takes it. Its row stays, for usage. 422 when the id is not ' +
      'a UUID.',
    operationId: 'revokeApiKey',
    params: ApiKeyParams,
    responses: { 204: { description: 'Revoked; the body is empty.' } },
    errors: adminErrors('KeyNotFound', 'Validation'),
  })
  async revoke(@Param() params: Record<string, string>): Promise<void> {
    const { id } = parseWith(ApiKeyParams, params);
    if (!(await this.keys.revoke(id))) throw new ApiError(404, 'not_found', `no active key with id ${params.id}`);
  }
}
