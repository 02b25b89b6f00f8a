import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlCache } from './ttl-cache';

describe('TtlCache', () => {
  it('shares one load between lookups that miss together, and reloads once the entry is stale', async () => {
    let loads = 0;
    const load = async () => ++loads;
    const fresh = new TtlCache<number>(60_000);
    const [a, b] = await Promise.all([fresh.get('k', load), fresh.get('k', load)]);
    assert.deepEqual([a, b, loads], [1, 1, 1]);
    assert.equal(await fresh.get('other', load), 2);

    const stale = new TtlCache<number>(0);
    await stale.get('k', load);
    await stale.get('k', load);
    assert.equal(loads, 4);
  });

  it('does not keep a failed load', async () => {
    const cache = new TtlCache<string>(60_000);
    await assert.rejects(
      cache.get('k', () => Promise.reject(new Error('down'))),
      /down/,
    );
    assert.equal(await cache.get('k', async () => 'up'), 'up');
  });

  it('forgets on delete and clear, and starts again past its size', async () => {
    let loads = 0;
    const load = async () => ++loads;
    const cache = new TtlCache<number>(60_000, 2);
    await cache.get('a', load);
    cache.delete('a');
    assert.equal(await cache.get('a', load), 2);
    await cache.get('b', load);
    await cache.get('c', load); // a third key empties the cache first
    assert.equal(await cache.get('a', load), 5);
    cache.clear();
    assert.equal(await cache.get('a', load), 6);
  });
});
