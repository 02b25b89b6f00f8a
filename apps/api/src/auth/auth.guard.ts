/**
 * Every route needs a key unless marked `@Public()`: the inference routes need the `inference` scope (an admin
 * key has both), routes marked `@RequireScope('admin')` need `admin`. The caller is kept on the request for the
 * model allowlist, the rate limits and the usage record. `--disable-auth` lets everyone in as an admin: the
 * guard sets that principal explicitly, and only then.
 */
import { CanActivate, ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { Scope } from './api-key.entity';
import { ANONYMOUS, ApiKeysService, Principal } from './api-keys.service';

const PUBLIC = 'switchyard:public';
const SCOPE = 'switchyard:scope';

export const Public = () => SetMetadata(PUBLIC, true);
export const RequireScope = (scope: Scope) => SetMetadata(SCOPE, scope);

type WithPrincipal = Request & { principal?: Principal };

/**
 * The caller the guard authenticated. A request the guard did not pass (a `@Public()` route, or a code path that
 * skipped it) has none and gets 401: it never falls back to an all-scopes principal.
 */
export function principalOf(req: Request): Principal {
  const principal = (req as WithPrincipal).principal;
  if (!principal) throw new ApiError(401, 'unauthorized', 'an API key is required: send "Authorization: Bearer <key>"');
  return principal;
}

@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeysService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, targets)) return true;
    const req = context.switchToHttp().getRequest<WithPrincipal>();
    if (this.config.disableAuth) {
      req.principal = ANONYMOUS;
      return true;
    }
    // a request with a body was authenticated before the body was read (main.ts)
    const principal = req.principal ?? (await this.keys.authenticate(req.header('authorization')));
    const scope = this.reflector.getAllAndOverride<Scope>(SCOPE, targets) ?? 'inference';
    if (!principal.scopes.has(scope) && !principal.scopes.has('admin')) {
      throw new ApiError(403, 'forbidden', `this key lacks the "${scope}" scope`);
    }
    req.principal = principal;
    return true;
  }
}
