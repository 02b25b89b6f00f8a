import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { knownGrammar } from './automaton';
import { compileGrammarOffThread } from './compile-thread';
import { GrammarError } from './errors';
import { jsonObjectRegex } from './json-schema';

describe('the grammar compile thread', () => {
  it('builds the automaton on its thread and leaves it in this process’s cache', async () => {
    const pattern = jsonObjectRegex();
    assert.equal(knownGrammar(pattern), undefined);
    const automaton = await compileGrammarOffThread(pattern);
    assert.equal(knownGrammar(pattern), automaton);
    assert.ok(automaton.matches('{"a":[1,{"b":null}]}'));
    assert.ok(!automaton.matches('{"a":}'));
    assert.equal(await compileGrammarOffThread(pattern), automaton, 'the second call is the cached automaton');
  });

  it('rejects with the GrammarError that says why, and remembers it', async () => {
    const pattern = '(?:a|b)*a(?:a|b){20}';
    await assert.rejects(
      compileGrammarOffThread(pattern),
      (err: unknown) => err instanceof GrammarError && /too complex/.test(err.message),
    );
    assert.ok(knownGrammar(pattern) instanceof GrammarError);
  });
});
