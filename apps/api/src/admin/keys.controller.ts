/** `/admin/keys`: create (the plaintext key is in the answer, once), list (no plaintext, no hash), revoke. */
import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { RequireScope } from '../auth/auth.guard';
import { ApiKeyEntity, Scope, SCOPES } from '../auth/api-key.entity';
import { ApiKeysService } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import { date, object, optionalIdList, optionalPositiveInt, string, uuid } from './admin-input';

function view(row: ApiKeyEntity) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes,
    allowed_models: row.allowedModels,
    rpm_limit: row.rpmLimit,
    tpm_limit: row.tpmLimit,
    expires_at: row.expiresAt,
    revoked_at: row.revokedAt,
    last_used_at: row.lastUsedAt,
    created_at: row.createdAt,
  };
}

@RequireScope('admin')
@Controller('admin/keys')
export class KeysController {
  constructor(private readonly keys: ApiKeysService) {}

  @Post()
  @HttpCode(201)
  async create(@Body() raw: unknown) {
    const body = object(raw, ['name', 'scopes', 'allowed_models', 'rpm_limit', 'tpm_limit', 'expires_at']);
    const name = string(body, 'name', 200);
    let scopes: Scope[] = ['inference'];
    if (body.scopes !== undefined) {
      const v = body.scopes;
      if (
        !Array.isArray(v) ||
        v.length === 0 ||
        v.length > SCOPES.length ||
        !v.every((s) => SCOPES.includes(s as Scope))
      ) {
        throw ApiError.validation('`scopes` must be a non-empty list of "inference" and "admin"');
      }
      scopes = [...new Set(v as Scope[])];
    }
    let expiresAt: Date | null = null;
    if (body.expires_at !== undefined && body.expires_at !== null) expiresAt = date(body.expires_at, 'expires_at');
    const { key, row } = await this.keys.create({
      name,
      scopes,
      allowedModels: optionalIdList(body, 'allowed_models') ?? null,
      rpmLimit: optionalPositiveInt(body, 'rpm_limit') ?? null,
      tpmLimit: optionalPositiveInt(body, 'tpm_limit') ?? null,
      expiresAt,
    });
    return { key, ...view(row) };
  }

  @Get()
  async list() {
    return (await this.keys.list()).map(view);
  }

  @Delete(':id')
  @HttpCode(204)
  async revoke(@Param('id') id: string): Promise<void> {
    if (!(await this.keys.revoke(uuid(id)))) throw new ApiError(404, 'not_found', `no active key with id ${id}`);
  }
}
