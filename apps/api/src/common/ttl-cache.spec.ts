import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RETRY_AFTER_FAILURE_MS, TtlCache } from './ttl-cache';

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
    const cache = new TtlCache<number>(60_000, { maxEntries: 2 });
    await cache.get('a', load);
    cache.delete('a');
    assert.equal(await cache.get('a', load), 2);
    await cache.get('b', load);
    await cache.get('c', load); // a third key empties the cache first
    assert.equal(await cache.get('a', load), 5);
    cache.clear();
    assert.equal(await cache.get('a', load), 6);
  });

  it('with staleMs, answers an expired entry at once while one reload runs, and takes the reload once it is in', async () => {
    let clock = 0;
    let loads = 0;
    let release!: () => void;
    const load = () => {
      const n = ++loads;
      return n === 1 ? Promise.resolve(n) : new Promise<number>((resolve) => (release = () => resolve(n)));
    };
    const cache = new TtlCache<number>(1000, { staleMs: 5000, now: () => clock });
    assert.equal(await cache.get('k', load), 1);
    clock = 1500;
    assert.equal(await cache.get('k', load), 1, 'stale, answered at once');
    assert.equal(await cache.get('k', load), 1);
    assert.equal(loads, 2, 'one reload for both');
    release();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(await cache.get('k', load), 2, 'the reload replaced it');
    assert.equal(loads, 2);
    clock = 1500 + 1000 + 5000; // past ttl + staleMs since the reload was sent
    const late = cache.get('k', load);
    assert.equal(loads, 3, 'too old to serve: the caller waits for the read');
    release();
    assert.equal(await late, 3);
  });

  it('with staleMs, keeps serving the stale entry when its reload fails, until it expires', async () => {
    let clock = 0;
    const cache = new TtlCache<string>(1000, { staleMs: 5000, now: () => clock });
    await cache.get('k', async () => 'old');
    clock = 2000;
    let failed = 0;
    const failing = () => {
      failed++;
      return Promise.reject(new Error('down'));
    };
    assert.equal(await cache.get('k', failing), 'old');
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(await cache.get('k', failing), 'old', 'answered again, and reloaded again');
    assert.equal(failed, 2);
    clock = 6000;
    await assert.rejects(cache.get('k', failing), /down/);
  });

  it('with serveStale, reads again before answering when the expired value is one it refuses to serve stale', async () => {
    let clock = 0;
    let loads = 0;
    const cache = new TtlCache<number | null>(1000, { staleMs: 5000, now: () => clock, serveStale: (v) => v !== null });
    assert.equal(await cache.get('absent', async () => (loads++, null)), null);
    clock = 1500;
    assert.equal(await cache.get('absent', async () => (loads++, 7)), 7, 'a stale null is not served');
    assert.equal(loads, 2);
  });

  it('with staleMs, drops a reload that lands after the entry was deleted, and survives a load that throws', async () => {
    let clock = 0;
    let release!: () => void;
    const cache = new TtlCache<string>(1000, { staleMs: 5000, now: () => clock });
    await cache.get('k', async () => 'old');
    clock = 1500;
    const slow = () => new Promise<string>((resolve) => (release = () => resolve('reloaded')));
    assert.equal(await cache.get('k', slow), 'old');
    cache.delete('k'); // an admin change on this replica
    assert.equal(await cache.get('k', async () => 'new'), 'new');
    release();
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(await cache.get('k', async () => 'other'), 'new', 'the late reload did not replace it');

    clock = 3000;
    const throwing = (): Promise<string> => {
      throw new Error('sync');
    };
    assert.equal(await cache.get('k', throwing), 'new', 'the caller still gets the stale value');
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(await cache.get('k', async () => 'fresh'), 'new');
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(await cache.get('k', async () => 'later'), 'fresh', 'a reload was tried again, and landed');
  });

  it('answers the last good value when a read fails, within lastGoodMs, and then reads again', async () => {
    let t = 0;
    let fail = false;
    let reads = 0;
    const load = () => {
      reads++;
      return fail ? Promise.reject(new Error('database down')) : Promise.resolve(`v${reads}`);
    };
    const served: unknown[] = [];
    const cache = new TtlCache<string>(1000, { lastGoodMs: 60_000, now: () => t, onLastGood: (e) => served.push(e) });
    assert.equal(await cache.get('k', load), 'v1');
    fail = true;
    t = 1500; // expired: read again, and that read fails
    const [a, b] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    assert.deepEqual([a, b, reads], ['v1', 'v1', 2]); // the two callers shared one read
    assert.equal((served[0] as Error).message, 'database down');
    t += RETRY_AFTER_FAILURE_MS - 1; // just failed: answered at once, no read
    assert.equal(await cache.get('k', load), 'v1');
    assert.equal(reads, 2);
    t += 2; // the back-off is over: it tries again
    assert.equal(await cache.get('k', load), 'v1');
    assert.equal(reads, 3);
    fail = false;
    t += RETRY_AFTER_FAILURE_MS;
    assert.equal(await cache.get('k', load), 'v4'); // back: the new value, kept fresh again
    assert.equal(await cache.get('k', load), 'v4');
    assert.equal(reads, 4);
  });

  it('fails the read once the last good value is older than lastGoodMs, and never without one', async () => {
    let t = 0;
    let fail = false;
    const load = () => (fail ? Promise.reject(new Error('database down')) : Promise.resolve('v'));
    const cache = new TtlCache<string>(1000, { lastGoodMs: 5000, now: () => t });
    await cache.get('k', load);
    fail = true;
    t = 6001;
    await assert.rejects(cache.get('k', load), /database down/);
    await assert.rejects(cache.get('never-read', load), /database down/);
  });
});
