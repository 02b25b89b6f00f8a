import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CannotPlaceError, EvictionReason, ModelPool, parseBytes, PoolSpec } from './model-pool';

/** A stand-in model: the pool's logic is under test here; the worker's end-to-end tests load real ones. */
class FakeModel {
  busy = 0;
  unloaded = false;
  parked = false;
  resumes = 0;
  constructor(readonly id: string) {}
  isIdle(): boolean {
    return this.busy === 0;
  }
  unload(): Promise<void> {
    this.unloaded = true;
    return Promise.resolve();
  }
  park(): Promise<void> {
    this.parked = true;
    return Promise.resolve();
  }
  resume(): Promise<void> {
    this.parked = false;
    this.resumes++;
    return Promise.resolve();
  }
}

interface Spec extends PoolSpec {
  bytes: number;
}

function makePool(options: {
  budget: number;
  host?: number;
  keepAliveMs?: number;
  placeTimeoutMs?: number;
  loadMs?: number;
}) {
  const loads: string[] = [];
  const evictions: [string, EvictionReason][] = [];
  const parks: [string, EvictionReason][] = [];
  let inFlight = 0;
  let maxInFlightPerId = 0;
  const inFlightById = new Map<string, number>();
  const pool = new ModelPool<Spec, FakeModel>({
    budgetBytes: options.budget,
    hostBudgetBytes: options.host ?? 0,
    // a parked model keeps its weights: a quarter of what it costs resident, in this stand-in
    parkedCost: (spec) => spec.bytes / 4,
    keepAliveMs: options.keepAliveMs ?? -1,
    placeTimeoutMs: options.placeTimeoutMs ?? 50,
    cost: (spec) => spec.bytes,
    load: async (spec) => {
      loads.push(spec.id);
      inFlight++;
      const n = (inFlightById.get(spec.id) ?? 0) + 1;
      inFlightById.set(spec.id, n);
      maxInFlightPerId = Math.max(maxInFlightPerId, n);
      await new Promise((r) => setTimeout(r, options.loadMs ?? 5));
      inFlight--;
      inFlightById.set(spec.id, n - 1);
      return new FakeModel(spec.id);
    },
    onEvicted: (id, reason) => evictions.push([id, reason]),
    onParked: (id, reason) => parks.push([id, reason]),
  });
  return { pool, loads, evictions, parks, maxInFlight: () => maxInFlightPerId, inFlight: () => inFlight };
}

const spec = (id: string, bytes: number, pinned = false, keepAliveMs: number | null = null): Spec => ({
  id,
  bytes,
  pinned,
  keepAliveMs,
});

describe('ModelPool', () => {
  it('loads each model once, however many callers ask at the same time', async () => {
    const { pool, loads, maxInFlight } = makePool({ budget: 100 });
    const models = await Promise.all([1, 2, 3, 4].map(() => pool.ensure(spec('a', 10))));
    assert.deepEqual(loads, ['a']);
    assert.equal(maxInFlight(), 1);
    assert.ok(models.every((m) => m === models[0]));
    assert.equal(pool.usedBytes, 10);
    await pool.close();
  });

  it('evicts the least recently used idle model to make room, and accounts the bytes', async () => {
    const { pool, evictions } = makePool({ budget: 100 });
    const a = await pool.ensure(spec('a', 40));
    await pool.ensure(spec('b', 40));
    pool.touch('a'); // b is now the least recently used
    await pool.ensure(spec('c', 40));
    assert.deepEqual(evictions, [['b', 'lru']]);
    assert.equal(pool.has('b'), false);
    assert.equal(a.unloaded, false);
    assert.equal(pool.usedBytes, 80);
    await pool.close();
  });

  it('never evicts a busy or pinned model, and fails with CannotPlaceError after the bounded wait', async () => {
    const { pool, evictions } = makePool({ budget: 100, placeTimeoutMs: 40 });
    const a = await pool.ensure(spec('a', 50, true));
    const b = await pool.ensure(spec('b', 50));
    b.busy = 1;
    await assert.rejects(pool.ensure(spec('c', 50)), CannotPlaceError);
    assert.deepEqual(evictions, []);
    assert.equal(pool.has('c'), false, 'a failed load leaves no reservation behind');
    assert.equal(pool.usedBytes, 100);
    assert.equal(a.unloaded, false);
    await pool.close();
  });

  it('a load waiting for room proceeds when a busy model goes idle', async () => {
    const { pool, evictions } = makePool({ budget: 100, placeTimeoutMs: 2000 });
    const b = await pool.ensure(spec('b', 60));
    b.busy = 1;
    const loading = pool.ensure(spec('c', 60));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.list().find((e) => e.id === 'c')?.state, 'loading');
    b.busy = 0;
    pool.notifyIdle();
    await loading;
    assert.deepEqual(evictions, [['b', 'lru']]);
    await pool.close();
  });

  it('refuses a model bigger than the whole budget at once', async () => {
    const { pool, loads } = makePool({ budget: 100 });
    await assert.rejects(pool.ensure(spec('huge', 101)), /more than this worker's device memory/);
    assert.deepEqual(loads, []);
    await pool.close();
  });

  it('unloads idle models after the keep-alive, but not pinned or busy ones', async () => {
    const { pool, evictions } = makePool({ budget: 100, keepAliveMs: 30 });
    await pool.ensure(spec('idle', 10));
    await pool.ensure(spec('pinned', 10, true));
    const busy = await pool.ensure(spec('busy', 10));
    busy.busy = 1;
    await new Promise((r) => setTimeout(r, 40));
    await pool.sweep();
    assert.deepEqual(evictions, [['idle', 'keep_alive']]);
    assert.deepEqual(
      pool
        .list()
        .map((e) => e.id)
        .sort(),
      ['busy', 'pinned'],
    );
    busy.busy = 0;
    await pool.close();
  });

  it('a failed load frees its reservation and lets the next caller try again', async () => {
    let fail = true;
    const pool = new ModelPool<Spec, FakeModel>({
      budgetBytes: 100,
      keepAliveMs: -1,
      placeTimeoutMs: 10,
      cost: (s) => s.bytes,
      load: (s) => (fail ? Promise.reject(new Error('broken graph')) : Promise.resolve(new FakeModel(s.id))),
    });
    await assert.rejects(pool.ensure(spec('a', 30)), /broken graph/);
    assert.equal(pool.usedBytes, 0);
    fail = false;
    await pool.ensure(spec('a', 30));
    assert.equal(pool.usedBytes, 30);
    await pool.close();
  });

  it('close unloads everything', async () => {
    const { pool, evictions } = makePool({ budget: 100 });
    const a = await pool.ensure(spec('a', 10, true));
    await pool.ensure(spec('b', 10));
    await pool.close();
    assert.equal(a.unloaded, true);
    assert.deepEqual(evictions.map((e) => e[1]).sort(), ['shutdown', 'shutdown']);
    assert.equal(pool.usedBytes, 0);
    await assert.rejects(pool.ensure(spec('c', 1)), CannotPlaceError);
  });
});

describe('ModelPool tiers and keep-alives', () => {
  it('parks the least recently used idle model to make room, and resumes it without a load', async () => {
    const { pool, loads, parks, evictions } = makePool({ budget: 100, host: 100 });
    const a = await pool.ensure(spec('a', 60));
    await pool.ensure(spec('b', 60));
    assert.deepEqual(parks, [['a', 'lru']]);
    assert.equal(a.parked, true);
    assert.equal(pool.state('a'), 'parked');
    assert.equal(pool.has('a'), false, 'a parked model takes no requests');
    assert.equal(pool.usedBytes, 60, 'a parked model leaves the device budget');
    assert.equal(pool.parkedBytes, 15, 'and holds its parked cost in the host budget');
    // a comes back: b is parked in turn, and nothing is loaded again
    const again = await pool.ensure(spec('a', 60));
    assert.equal(again, a);
    assert.equal(a.resumes, 1);
    assert.deepEqual(loads, ['a', 'b']);
    assert.deepEqual(parks, [
      ['a', 'lru'],
      ['b', 'lru'],
    ]);
    assert.deepEqual(evictions, []);
    await pool.close();
  });

  it('unloads the least recently used parked models when the host budget is full, and unloads outright without one', async () => {
    const { pool, evictions, parks } = makePool({ budget: 100, host: 20 });
    await pool.ensure(spec('a', 60));
    await pool.ensure(spec('b', 60)); // parks a (15 of 20)
    await pool.ensure(spec('c', 60)); // parks b, unloading a to make host room
    assert.deepEqual(
      parks.map((p) => p[0]),
      ['a', 'b'],
    );
    assert.deepEqual(evictions, [['a', 'lru']]);
    assert.equal(pool.parkedBytes, 15);
    await pool.close();
    const none = makePool({ budget: 100 });
    await none.pool.ensure(spec('a', 60));
    await none.pool.ensure(spec('b', 60));
    assert.deepEqual(none.parks, []);
    assert.deepEqual(none.evictions, [['a', 'lru']]);
    await none.pool.close();
  });

  it('parks a model idle past its keep-alive, and unloads one whose keep-alive is 0 as soon as it is idle', async () => {
    const { pool, parks, evictions } = makePool({ budget: 100, host: 100, keepAliveMs: 20 });
    await pool.ensure(spec('a', 10));
    const b = await pool.ensure(spec('b', 10, false, 0));
    b.busy = 1;
    await pool.sweep();
    assert.deepEqual(evictions, [], 'b is busy');
    b.busy = 0;
    pool.notifyIdle();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(evictions, [['b', 'keep_alive']], 'keep-alive 0: unloaded once idle, not parked');
    await new Promise((r) => setTimeout(r, 30));
    await pool.sweep();
    assert.deepEqual(parks, [['a', 'keep_alive']]);
    await pool.close();
  });

  it('keeps a model whose keep-alive is -1 through memory pressure, and a request can set it', async () => {
    const { pool, parks, evictions } = makePool({ budget: 100, host: 100, placeTimeoutMs: 30 });
    // from the registry entry
    await pool.ensure(spec('kept', 60, false, -1));
    await assert.rejects(pool.ensure(spec('other', 60)), CannotPlaceError);
    assert.equal(pool.state('kept'), 'loaded');
    await pool.close();
    // from a request: the last request's keep-alive wins (Ollama)
    const second = makePool({ budget: 100, host: 100, placeTimeoutMs: 30 });
    await second.pool.ensure(spec('a', 60));
    second.pool.setKeepAlive('a', -1);
    await assert.rejects(second.pool.ensure(spec('b', 60)), CannotPlaceError);
    second.pool.setKeepAlive('a', 5000);
    await second.pool.ensure(spec('b', 60));
    assert.deepEqual(second.parks, [['a', 'lru']]);
    assert.deepEqual([...parks, ...evictions], [['kept', 'shutdown']], 'the first pool moved nothing out for room');
    await second.pool.close();
  });

  it('an explicit unload removes a parked model, and close unloads both tiers', async () => {
    const { pool, evictions } = makePool({ budget: 100, host: 100 });
    const a = await pool.ensure(spec('a', 60));
    const b = await pool.ensure(spec('b', 60));
    assert.equal(await pool.unload('a'), true);
    assert.equal(a.unloaded, true);
    assert.equal(pool.parkedBytes, 0);
    await pool.ensure(spec('c', 60)); // parks b
    await pool.close();
    assert.equal(b.unloaded, true);
    assert.deepEqual(evictions.map((e) => e.join(':')).sort(), ['a:unload', 'b:shutdown', 'c:shutdown']);
  });
});

describe('parseBytes', () => {
  it('reads plain counts and binary units', () => {
    assert.equal(parseBytes('1024'), 1024);
    assert.equal(parseBytes('64MiB'), 64 * 1024 * 1024);
    assert.equal(parseBytes('1.5G'), 1.5 * 1024 ** 3);
    assert.equal(parseBytes('20 mb'), 20 * 1024 * 1024);
    assert.equal(parseBytes('lots'), null);
    assert.equal(parseBytes('0'), null);
  });
});
