import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FindOperator, Repository } from 'typeorm';
import type { ModelEntity } from './model.entity';
import { modelDir } from '../../../../test/support/repo';
import { readApiConfig } from '@switchyard/config';
import { ApiMetrics } from '../metrics/api-metrics';
import { ModelRegistry } from './model-registry.service';

/** Stands in for Postgres: the caching around it is under test here; the e2e tests read the real one. */
class FakeModels {
  rows = new Map<string, ModelEntity>();
  lookups = 0;
  refreshes = 0;
  /** Holds the next refresh's answer until released. */
  hold: Promise<void> | null = null;

  readonly repository = {
    findOneBy: ({ id }: { id: string }) => {
      this.lookups++;
      return Promise.resolve(this.copy(id));
    },
    findBy: async ({ id }: { id: FindOperator<string[]> }) => {
      this.refreshes++;
      const ids = id.value;
      const found = ids.map((i) => this.copy(i)).filter((r): r is ModelEntity => r !== null);
      if (this.hold) await this.hold;
      return found;
    },
  } as unknown as Repository<ModelEntity>;

  private copy(id: string): ModelEntity | null {
    const row = this.rows.get(id);
    return row ? { ...row } : null;
  }

  add(id: string, enabled = true): void {
    this.rows.set(id, {
      id,
      path: modelDir('demo-tiny'),
      enabled,
      pinned: false,
      fallbacks: [],
      maxInputTokens: null,
      maxTotalTokens: null,
      defaultParameters: null,
      quantization: null,
    } as unknown as ModelEntity);
  }
}

function registry(models: FakeModels): ModelRegistry {
  const config = readApiConfig(['--model-id', modelDir('demo-tiny')], {});
  return new ModelRegistry(models.repository, config, new ApiMetrics());
}

describe('ModelRegistry', () => {
  it('reads the rows of models in use again in the background, so requests find them fresh', async () => {
    const models = new FakeModels();
    models.add('m');
    const reg = registry(models);
    assert.ok(await reg.resolve('m'));
    assert.equal(models.lookups, 1);

    models.add('m', false); // disabled elsewhere
    await reg.refreshHot();
    assert.equal(models.refreshes, 1);
    assert.equal(await reg.resolve('m'), null, 'the refreshed row is served');
    assert.equal(models.lookups, 1, 'without a read of its own');

    await reg.refreshHot(Date.now() + 61_000);
    assert.equal(models.refreshes, 1, 'a model unused for a minute is no longer refreshed');
  });

  it('drops a background read that an admin change on this replica overtook', async () => {
    const models = new FakeModels();
    models.add('m');
    const reg = registry(models);
    assert.ok(await reg.resolve('m'));
    let release!: () => void;
    models.hold = new Promise<void>((resolve) => (release = resolve));
    const refreshing = reg.refreshHot(); // reads 'm' enabled, answers later
    models.add('m', false);
    reg.invalidate('m'); // the admin route disabled it here
    release();
    await refreshing;
    assert.equal(await reg.resolve('m'), null, 'the older read was not put back');
    assert.equal(models.lookups, 2);
  });
});
