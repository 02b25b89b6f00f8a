import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { ApiError } from '../common/api-error';
import type { ApiConfig } from '../config/api-config';
import { ANONYMOUS, ApiKeysService, Principal } from './api-keys.service';
import { AuthGuard, principalOf, Public, RequireScope } from './auth.guard';

const KEY: Principal = {
  keyId: 'k1',
  name: 'team-a',
  scopes: new Set(['inference']),
  allowedModels: ['tiny'],
  rpmLimit: null,
  tpmLimit: null,
};

class Routes {
  generate() {}
  @Public()
  health() {}
  @RequireScope('admin')
  admin() {}
}

function guard(disableAuth: boolean, principal: Principal = KEY): AuthGuard {
  const keys = {
    authenticate: (header?: string) =>
      header ? Promise.resolve(principal) : Promise.reject(new ApiError(401, 'unauthorized', 'no key')),
  };
  return new AuthGuard(new Reflector(), keys as unknown as ApiKeysService, { disableAuth } as ApiConfig);
}

function context(route: keyof Routes, req: Partial<Request>): ExecutionContext {
  return {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- as Nest does: the Reflector reads its metadata, never calls it
    getHandler: () => Routes.prototype[route],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
}

const request = (authorization?: string) =>
  ({ header: (name: string) => (name === 'authorization' ? authorization : undefined) }) as unknown as Request;

describe('principalOf', () => {
  it('answers 401 for a request the guard set no caller on, never an all-scopes principal', () => {
    assert.throws(
      () => principalOf(request()),
      (err: unknown) => err instanceof ApiError && err.status === 401 && err.errorType === 'unauthorized',
    );
  });

  it('gives the caller the guard authenticated', async () => {
    const req = request('Bearer sy-x');
    assert.equal(await guard(false).canActivate(context('generate', req)), true);
    assert.equal(principalOf(req), KEY);
  });

  it('gives the anonymous admin only where --disable-auth set it', async () => {
    const req = request();
    assert.equal(await guard(true).canActivate(context('generate', req)), true);
    assert.equal(principalOf(req), ANONYMOUS);
  });

  it('leaves a public route without a caller, so nothing there can act as one', async () => {
    const req = request();
    assert.equal(await guard(false).canActivate(context('health', req)), true);
    assert.throws(
      () => principalOf(req),
      (err: unknown) => err instanceof ApiError && err.status === 401,
    );
  });
});

describe('AuthGuard', () => {
  it('refuses a key without the route’s scope with 403, and no key with 401', async () => {
    await assert.rejects(
      guard(false).canActivate(context('admin', request('Bearer sy-x'))),
      (err: unknown) => err instanceof ApiError && err.status === 403 && err.errorType === 'forbidden',
    );
    await assert.rejects(
      guard(false).canActivate(context('generate', request())),
      (err: unknown) => err instanceof ApiError && err.status === 401,
    );
  });
});
