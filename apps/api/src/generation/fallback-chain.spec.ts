import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ModelError, ModelErrorKind } from '@switchyard/models';
import { ApiError } from '../common/api-error';
import type { ResolvedModel } from '../registry/model-registry.service';
import { ChainSteps, FallbackReason, Lookup, runChain } from './fallback-chain';

/** A registry and workers described per model: its state, whether it is overloaded, and what an attempt does. */
interface FakeModel {
  lookup?: Lookup['state'] | 'broken';
  overloaded?: boolean;
  /** What running on it does: answer, or throw this error (after sending `tokens` tokens). */
  fails?: { error: Error; tokens?: number };
}

function chain(models: Record<string, FakeModel>) {
  const moves: [string, string, FallbackReason][] = [];
  const attempted: string[] = [];
  let sent = 0;
  const steps: ChainSteps<string> = {
    lookup: (id) => {
      const state = models[id]?.lookup ?? 'ready';
      if (state === 'broken')
        return Promise.reject(new ModelError(ModelErrorKind.MissingFile, `/models/${id}`, 'config.json is missing'));
      if (state === 'ready') return Promise.resolve({ state, model: { spec: { id } } as unknown as ResolvedModel });
      return Promise.resolve({ state });
    },
    overloaded: (id) => Promise.resolve(models[id]?.overloaded ?? false),
    attempt: (model) => {
      const id = model.spec.id;
      attempted.push(id);
      sent = models[id]?.fails?.tokens ?? 0;
      if (models[id]?.fails) return Promise.reject(models[id].fails.error);
      return Promise.resolve(`served by ${id}`);
    },
    tokensSent: () => sent > 0,
    onFallback: (from, to, reason) => moves.push([from, to, reason]),
  };
  return { run: (candidates: string[]) => runChain(candidates, steps), moves, attempted };
}

describe('the fallback chain', () => {
  it('serves on the requested model when it can, with no move', async () => {
    const c = chain({});
    assert.equal(await c.run(['a', 'b']), 'served by a');
    assert.deepEqual(c.moves, []);
  });

  it('moves on from a disabled model', async () => {
    const c = chain({ a: { lookup: 'disabled' } });
    assert.equal(await c.run(['a', 'b']), 'served by b');
    assert.deepEqual(c.moves, [['a', 'b', 'disabled']]);
  });

  it('moves on from a model whose directory cannot be read, and from an unregistered fallback', async () => {
    const c = chain({ a: { lookup: 'broken' }, b: { lookup: 'absent' } });
    assert.equal(await c.run(['a', 'b', 'c']), 'served by c');
    assert.deepEqual(c.moves, [
      ['a', 'b', 'load_failed'],
      ['b', 'c', 'load_failed'],
    ]);
  });

  it('answers 404 for an unregistered requested model, without trying its fallbacks', async () => {
    const c = chain({ a: { lookup: 'absent' } });
    await assert.rejects(c.run(['a', 'b']), (e: ApiError) => e.status === 404 && e.errorType === 'model_not_found');
    assert.deepEqual(c.attempted, []);
  });

  it('moves on from an overloaded model, but tries the last one however long its queue', async () => {
    const c = chain({ a: { overloaded: true }, b: { overloaded: true } });
    assert.equal(await c.run(['a', 'b']), 'served by b');
    assert.deepEqual(c.moves, [['a', 'b', 'overloaded']]);
  });

  it('moves on after a generation error before the first token, never after one', async () => {
    const before = chain({ a: { fails: { error: ApiError.generation('the worker failed') } } });
    assert.equal(await before.run(['a', 'b']), 'served by b');
    assert.deepEqual(before.moves, [['a', 'b', 'generation']]);

    const after = chain({ a: { fails: { error: ApiError.generation('the worker failed'), tokens: 3 } } });
    await assert.rejects(after.run(['a', 'b']), /the worker failed/);
    assert.deepEqual(after.attempted, ['a']);
  });

  it('moves on when no worker could place the model', async () => {
    const c = chain({ a: { fails: { error: ApiError.unavailable('cannot load', 'cannot_place') } } });
    assert.equal(await c.run(['a', 'b']), 'served by b');
    assert.deepEqual(c.moves, [['a', 'b', 'load_failed']]);
  });

  it('ends with the last model’s error when none is left', async () => {
    const c = chain({ a: { lookup: 'disabled' }, b: { fails: { error: ApiError.generation('b failed') } } });
    await assert.rejects(
      c.run(['a', 'b']),
      (e: ApiError) => e.errorType === 'generation' && /b failed/.test(e.message),
    );
    assert.deepEqual(c.moves, [['a', 'b', 'disabled']]);
    const disabled = chain({ a: { lookup: 'disabled' }, b: { lookup: 'disabled' } });
    await assert.rejects(
      disabled.run(['a', 'b']),
      (e: ApiError) => e.status === 503 && /"b" is disabled/.test(e.message),
    );
  });

  it('never moves on after an error that another model would give too, or a bug', async () => {
    const invalid = chain({ a: { fails: { error: ApiError.validation('`inputs` is too long') } } });
    await assert.rejects(invalid.run(['a', 'b']), /too long/);
    const bug = chain({ a: { fails: { error: new TypeError('x is undefined') } } });
    await assert.rejects(bug.run(['a', 'b']), TypeError);
    assert.deepEqual([invalid.moves, bug.moves], [[], []]);
  });
});
