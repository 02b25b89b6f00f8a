import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CannotPlaceError, EvictionReason, ModelPool, parseBytes, PoolSpec } from './model-pool';

/** A stand-in model: the pool's logic is under test here; the worker's end-to-end tests load real ones. */
class FakeModel {
  busy = 0;
  unloaded = false;
  constructor(readonly id: string) {}
  isIdle(): boolean {
    return this.busy === 0;
  }
  async unload(): Promise<void> {
    this.unloaded = true;
  }
}

interface Spec extends PoolSpec {
  bytes: number;
}

function makePool(options: { budget: number; keepAliveMs?: number; placeTimeoutMs?: number; loadMs?: number }) {
  const loads: string[] = [];
  const evictions: [string, EvictionReason][] = [];
  let inFlight = 0;
  let maxInFlightPerId = 0;
  const inFlightById = new Map<string, number>();
  const pool = new ModelPool<Spec, FakeModel>({
    budgetBytes: options.budget,
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
  });
  return { pool, loads, evictions, maxInFlight: () => maxInFlightPerId, inFlight: () => inFlight };
}

const spec = (id: string, bytes: number, pinned = false): Spec => ({ id, bytes, pinned });

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
    assert.deepEqual(pool.list().map((e) => e.id).sort(), ['busy', 'pinned']);
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
      load: async (s) => {
        if (fail) throw new Error('broken graph');
        return new FakeModel(s.id);
      },
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
