import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Repository } from 'typeorm';
import { modelDir } from '../../../../test/support/repo';
import { ApiError } from '../common/api-error';
import { readApiConfig } from '@switchyard/config';
import { unreachable } from '../health/dependencies';
import { ApiMetrics } from '../metrics/api-metrics';
import type { ApiKeyEntity } from './api-key.entity';
import { ApiKeysService, generateKey, hashKey } from './api-keys.service';

/** Stands in for Postgres: the caching through an outage is under test here; the fault suite stops the real one. */
class FakeKeys {
  rows: ApiKeyEntity[] = [];
  down = false;
  reads = 0;

  readonly repository = {
    findOneBy: ({ keyHash }: { keyHash: string }) => {
      this.reads++;
      if (this.down) {
        return Promise.reject(
          Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
        );
      }
      return Promise.resolve(this.rows.find((r) => r.keyHash === keyHash) ?? null);
    },
    query: () => Promise.resolve([]),
  } as unknown as Repository<ApiKeyEntity>;

  add(key: string): void {
    this.rows.push({
      id: `id-${this.rows.length}`,
      name: 'team',
      keyHash: hashKey(key),
      scopes: ['inference'],
      allowedModels: null,
      rpmLimit: null,
      tpmLimit: null,
      expiresAt: null,
      revokedAt: null,
    } as unknown as ApiKeyEntity);
  }
}

function service(keys: FakeKeys): ApiKeysService {
  const config = readApiConfig(['--model-id', modelDir('demo-tiny')], {});
  return new ApiKeysService(keys.repository, config, new ApiMetrics());
}

const bearer = (key: string) => `Bearer ${key}`;
const expire = () => new Promise((resolve) => setTimeout(resolve, 1100)); // past the one-second cache

describe('ApiKeysService through a Postgres outage', () => {
  it('serves a key read before the outage from its last good row, and cannot check a key never read', async () => {
    const keys = new FakeKeys();
    const known = generateKey();
    keys.add(known);
    const auth = service(keys);
    assert.equal((await auth.authenticate(bearer(known))).name, 'team');

    keys.down = true;
    await expire();
    assert.equal((await auth.authenticate(bearer(known))).name, 'team', 'the last good row');
    const reads = keys.reads;
    await auth.authenticate(bearer(known));
    assert.equal(keys.reads, reads, 'within a second of a failed read, answered without another');

    const err = await auth.authenticate(bearer(generateKey())).then(
      () => assert.fail('a key never read was accepted'),
      (e: unknown) => e,
    );
    assert.ok(!(err instanceof ApiError), 'not a 401');
    assert.equal(unreachable(err), 'postgres', 'the error filter answers it 503');
  });

  it('answers 401 for an unknown key while Postgres answers, and finds a key added since', async () => {
    const keys = new FakeKeys();
    const auth = service(keys);
    await assert.rejects(auth.authenticate(bearer(generateKey())), (e: unknown) => (e as ApiError).status === 401);
    const key = generateKey();
    keys.add(key);
    assert.ok(await auth.authenticate(bearer(key)));
  });
});
