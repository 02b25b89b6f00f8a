import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelError, ModelErrorKind } from '@switchyard/models';
import { ANONYMOUS, Principal } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import type { ModelEntity } from '../registry/model.entity';
import type { ResolvedModel } from '../registry/model-registry.service';
import { MAX_CANDIDATES, parseWith } from '../common/schema';
import { GenerateRequest } from '../tgi/tgi.schemas';
import { RouteResolver } from './route-resolver';

/** A registry of rows by id: each enabled or not, with its fallbacks; `broken` ones cannot be read. */
function resolver(rows: Record<string, { enabled?: boolean; fallbacks?: string[]; broken?: boolean }>): RouteResolver {
  const record = (id: string) =>
    Promise.resolve(
      rows[id] ? ({ id, enabled: rows[id].enabled ?? true, fallbacks: rows[id].fallbacks ?? [] } as ModelEntity) : null,
    );
  const resolve = (id: string) => {
    const row = rows[id];
    if (row?.broken) return Promise.reject(new ModelError(ModelErrorKind.MissingFile, `/m/${id}`, 'config.json'));
    return Promise.resolve(row && (row.enabled ?? true) ? ({ spec: { id } } as unknown as ResolvedModel) : null);
  };
  return new RouteResolver({ defaultModel: 'tiny', record, resolve });
}

const onlyTiny: Principal = { ...ANONYMOUS, keyId: 'k', allowedModels: ['tiny'] };

describe('route resolver', () => {
  it('takes the default model where TGI clients name none, or name the endpoint', () => {
    const r = resolver({});
    for (const name of [undefined, null, '', 'tgi', 'http://localhost:8080/generate']) {
      assert.equal(r.modelId(name), 'tiny');
    }
    assert.equal(r.modelId('small'), 'small');
    assert.throws(
      () => r.modelId(42),
      (e: ApiError) => e.errorType === 'validation',
    );
    assert.throws(
      () => r.modelId('../etc'),
      (e: ApiError) => e.errorType === 'validation',
    );
  });

  it("checks the key's allowlist", () => {
    const r = resolver({});
    assert.ok(r.allowed(ANONYMOUS, 'small'));
    assert.ok(r.allowed(onlyTiny, 'tiny'));
    assert.throws(
      () => r.checkAllowed(onlyTiny, 'small'),
      (e: ApiError) => e.status === 403,
    );
  });

  it('lists the model and its fallbacks depth first, once each, within the limit', async () => {
    const r = resolver({ a: { fallbacks: ['b', 'c'] }, b: { fallbacks: ['d', 'a'] }, c: { fallbacks: ['b'] } });
    assert.deepEqual(await r.candidates('a', undefined, ANONYMOUS), ['a', 'b', 'd', 'c']);
    const chainOf12: Record<string, { fallbacks: string[] }> = {};
    for (let i = 0; i < 12; i++) chainOf12[`m${i}`] = { fallbacks: [`m${i + 1}`] };
    assert.equal((await resolver(chainOf12).candidates('m0', undefined, ANONYMOUS)).length, MAX_CANDIDATES);
  });

  it("puts the client's own list in place of the model's; the request's schema checks that list", async () => {
    const r = resolver({ a: { fallbacks: ['b'] }, c: { fallbacks: ['d'] } });
    assert.deepEqual(await r.candidates('a', ['c'], ANONYMOUS), ['a', 'c', 'd']);
    assert.deepEqual(await r.candidates('a', null, ANONYMOUS), ['a', 'b']);
    for (const bad of ['c', [1], ['../x'], Array.from({ length: MAX_CANDIDATES + 1 }, (_, i) => `m${i}`)]) {
      assert.throws(
        () => parseWith(GenerateRequest, { inputs: 'x', fallbacks: bad }),
        (e: ApiError) => e.errorType === 'validation' && /`fallbacks` must be a list of at most 8/.test(e.message),
      );
    }
  });

  it('leaves out the fallbacks the key may not use, but not the model it named', async () => {
    const r = resolver({ small: { fallbacks: ['big', 'tiny'] } });
    assert.deepEqual(await r.candidates('small', undefined, onlyTiny), ['small', 'tiny']);
  });

  it('looks a model up: absent, disabled, or ready; a broken directory throws', async () => {
    const r = resolver({ on: {}, off: { enabled: false }, broken: { broken: true } });
    assert.deepEqual(await r.lookup('none'), { state: 'absent' });
    assert.deepEqual(await r.lookup('off'), { state: 'disabled' });
    const ready = await r.lookup('on');
    assert.equal(ready.state === 'ready' && ready.model.spec.id, 'on');
    await assert.rejects(r.lookup('broken'), ModelError);
  });

  it('resolves an enabled model for /tokenize and /info: 404, 403 or 503 otherwise', async () => {
    const r = resolver({ tiny: {}, off: { enabled: false }, broken: { broken: true } });
    assert.equal((await r.model(undefined)).spec.id, 'tiny');
    await assert.rejects(r.model('off'), (e: ApiError) => e.status === 404);
    await assert.rejects(r.model('broken'), (e: ApiError) => e.errorType === 'cannot_place');
    await assert.rejects(r.model('off', onlyTiny), (e: ApiError) => e.status === 403);
  });
});
