import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LastGoodCache, RETRY_AFTER_FAILURE_MS } from './last-good-cache';

/** A clock's start: lru-cache takes a start time of 0 for "no time to live". */
const T0 = 1_000_000;
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('LastGoodCache', () => {
  it('shares one load between lookups that miss together, and reloads once the entry has expired', async () => {
    let clock = T0;
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    const cache = new LastGoodCache<number>({ ttlMs: 1000, now: () => clock });
    const [a, b] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    assert.deepEqual([a, b, loads], [1, 1, 1]);
    assert.equal(await cache.get('other', load), 2);
    assert.equal(await cache.get('k', load), 1);
    clock = T0 + 1001;
    assert.equal(await cache.get('k', load), 3);
    assert.equal(loads, 3);
  });

  it('does not keep a failed load', async () => {
    const cache = new LastGoodCache<string>({ ttlMs: 60_000 });
    await assert.rejects(
      cache.get('k', () => Promise.reject(new Error('down'))),
      /down/,
    );
    assert.equal(await cache.get('k', () => Promise.resolve('up')), 'up');
  });

  it('keeps null answers (an absent row is an answer)', async () => {
    let loads = 0;
    const cache = new LastGoodCache<string | null>({ ttlMs: 60_000 });
    assert.equal(await cache.get('absent', () => (loads++, Promise.resolve(null))), null);
    assert.equal(await cache.get('absent', () => (loads++, Promise.resolve(null))), null);
    assert.equal(loads, 1);
  });

  it('forgets on delete and clear, and past its size drops the least recently used', async () => {
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    const cache = new LastGoodCache<number>({ ttlMs: 60_000, max: 2 });
    await cache.get('a', load);
    cache.delete('a');
    assert.equal(await cache.get('a', load), 2);
    await cache.get('b', load);
    assert.equal(await cache.get('a', load), 2, 'a is now the most recently used');
    await cache.get('c', load); // a third key drops b
    assert.equal(await cache.get('a', load), 2);
    assert.equal(await cache.get('b', load), 5);
    cache.clear();
    assert.equal(await cache.get('a', load), 6);
  });

  it('reads again, for its callers, a read that a delete on this replica overtook', async () => {
    let release!: (v: string) => void;
    const cache = new LastGoodCache<string>({ ttlMs: 60_000 });
    const waiting = cache.get('k', () => new Promise<string>((resolve) => (release = resolve)));
    await tick();
    cache.delete('k'); // an admin change: the read in flight may predate it
    release('before');
    assert.equal(await cache.get('k', () => Promise.resolve('after')), 'after');
    assert.equal(await waiting, 'after', 'the waiting caller got the read made after the change');
  });

  it('with staleMs, answers an expired entry at once while one reload runs, and takes the reload once it is in', async () => {
    let clock = T0;
    let loads = 0;
    let release!: () => void;
    const load = () => {
      const n = ++loads;
      return n === 1 ? Promise.resolve(n) : new Promise<number>((resolve) => (release = () => resolve(n)));
    };
    const cache = new LastGoodCache<number>({ ttlMs: 1000, staleMs: 5000, now: () => clock });
    assert.equal(await cache.get('k', load), 1);
    clock = T0 + 1500;
    assert.equal(await cache.get('k', load), 1, 'stale, answered at once');
    assert.equal(await cache.get('k', load), 1);
    assert.equal(loads, 2, 'one reload for both');
    release();
    await tick();
    assert.equal(await cache.get('k', load), 2, 'the reload replaced it');
    assert.equal(loads, 2);
    clock = T0 + 1500 + 1000 + 5000; // past ttl + staleMs since the reload was sent
    const late = cache.get('k', load);
    await tick();
    assert.equal(loads, 3, 'too old to serve: the caller waits for the read');
    release();
    assert.equal(await late, 3);
  });

  it('with staleMs, keeps serving the stale entry when its reload fails, until it expires', async () => {
    let clock = T0;
    const cache = new LastGoodCache<string>({ ttlMs: 1000, staleMs: 5000, now: () => clock });
    await cache.get('k', () => Promise.resolve('old'));
    clock = T0 + 2000;
    let failed = 0;
    const failing = () => {
      failed++;
      return Promise.reject(new Error('down'));
    };
    assert.equal(await cache.get('k', failing), 'old');
    await tick();
    assert.equal(await cache.get('k', failing), 'old', 'answered again, and reloaded again');
    await tick();
    assert.equal(failed, 2);
    clock = T0 + 6000;
    await assert.rejects(cache.get('k', failing), /down/);
  });

  it('with serveStale, reads again before answering when the expired value is one it refuses to serve stale', async () => {
    let clock = T0;
    let loads = 0;
    const cache = new LastGoodCache<number | null>({
      ttlMs: 1000,
      staleMs: 5000,
      now: () => clock,
      serveStale: (v) => v !== null,
    });
    assert.equal(await cache.get('absent', () => (loads++, Promise.resolve(null))), null);
    clock = T0 + 1500;
    assert.equal(await cache.get('absent', () => (loads++, Promise.resolve(7))), 7, 'a stale null is not served');
    assert.equal(loads, 2);
  });

  it('with staleMs, drops a reload that lands after the entry was deleted, and survives a load that throws', async () => {
    let clock = T0;
    let release!: () => void;
    const cache = new LastGoodCache<string>({ ttlMs: 1000, staleMs: 5000, now: () => clock });
    await cache.get('k', () => Promise.resolve('old'));
    clock = T0 + 1500;
    const slow = () => new Promise<string>((resolve) => (release = () => resolve('reloaded')));
    assert.equal(await cache.get('k', slow), 'old');
    cache.delete('k'); // an admin change on this replica
    assert.equal(await cache.get('k', () => Promise.resolve('new')), 'new');
    release();
    await tick();
    assert.equal(await cache.get('k', () => Promise.resolve('other')), 'new', 'the late reload did not replace it');

    clock = T0 + 3000;
    const throwing = (): Promise<string> => {
      throw new Error('sync');
    };
    assert.equal(await cache.get('k', throwing), 'new', 'the caller still gets the stale value');
    await tick();
    assert.equal(await cache.get('k', () => Promise.resolve('fresh')), 'new');
    await tick();
    assert.equal(await cache.get('k', () => Promise.resolve('later')), 'fresh', 'a reload was tried again, and landed');
  });

  it('set puts a value read elsewhere, unless a delete or clear came after that read was sent', async () => {
    const cache = new LastGoodCache<string>({ ttlMs: 60_000 });
    await cache.get('k', () => Promise.resolve('old'));
    cache.set('k', 'refreshed', cache.version);
    assert.equal(await cache.get('k', () => Promise.resolve('read')), 'refreshed');
    const since = cache.version;
    cache.delete('k');
    cache.set('k', 'too late', since);
    assert.equal(await cache.get('k', () => Promise.resolve('read')), 'read');
  });

  it('answers the last good value when a read fails, within lastGoodMs, and then reads again', async () => {
    let t = T0;
    let fail = false;
    let reads = 0;
    const load = () => {
      reads++;
      return fail ? Promise.reject(new Error('database down')) : Promise.resolve(`v${reads}`);
    };
    const served: unknown[] = [];
    const cache = new LastGoodCache<string>({
      ttlMs: 1000,
      lastGoodMs: 60_000,
      now: () => t,
      onLastGood: (e) => served.push(e),
    });
    assert.equal(await cache.get('k', load), 'v1');
    fail = true;
    t = T0 + 1500; // expired: read again, and that read fails
    const [a, b] = await Promise.all([cache.get('k', load), cache.get('k', load)]);
    assert.deepEqual([a, b, reads], ['v1', 'v1', 2]); // the two callers shared one read
    assert.equal((served[0] as Error).message, 'database down');
    t += RETRY_AFTER_FAILURE_MS - 1; // just failed: answered at once, no read
    assert.equal(await cache.get('k', load), 'v1');
    assert.equal(reads, 2);
    assert.equal(served.at(-1), null, 'an answer from the last good value without a read is counted too');
    t += 2; // the back-off is over: it tries again
    assert.equal(await cache.get('k', load), 'v1');
    assert.equal(reads, 3);
    fail = false;
    t += RETRY_AFTER_FAILURE_MS + 1; // (lru-cache's entries are fresh up to and including their time to live)
    assert.equal(await cache.get('k', load), 'v4'); // back: the new value, kept fresh again
    assert.equal(await cache.get('k', load), 'v4');
    assert.equal(reads, 4);
  });

  it('fails the read once the last good value is older than lastGoodMs, and never without one', async () => {
    let t = T0;
    let fail = false;
    const load = () => (fail ? Promise.reject(new Error('database down')) : Promise.resolve('v'));
    const cache = new LastGoodCache<string>({ ttlMs: 1000, lastGoodMs: 5000, now: () => t });
    await cache.get('k', load);
    fail = true;
    t = T0 + 4500; // the back-off after this failure ends with the last good value's 5 s, not a second later
    assert.equal(await cache.get('k', load), 'v');
    t = T0 + 5001;
    await assert.rejects(cache.get('k', load), /database down/);
    t = T0 + 6001;
    await assert.rejects(cache.get('k', load), /database down/);
    await assert.rejects(cache.get('never-read', load), /database down/);
  });
});
