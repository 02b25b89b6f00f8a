import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GrammarMasks, ModelGrammars, TokenVocabulary, VocabularySource } from './token-mask';

/** A tokenizer of fixed pieces; id 0 is a special eos token and id 1 a byte piece of a character. */
const PIECES = ['<eos>', '\uFFFD', '{', '}', '"', 'a', 'ab', '":', '1', '12', ',', 'xyz', 'b', 'c', 'abc', ''];
const EOS = 0;
const source: VocabularySource = {
  specialIds: new Set([EOS]),
  decode: (ids) => ids.map((id) => PIECES[id]).join(''),
};
const vocabulary = new TokenVocabulary(source, PIECES.length);
const id = (piece: string) => PIECES.indexOf(piece);

/** The ids `apply` leaves unbanned, given a cursor moved along `path`. */
function allowed(pattern: string, path: string[], budget = Infinity, eos = [EOS]): string[] {
  const cursor = new GrammarMasks(pattern, vocabulary).cursor(eos);
  for (const piece of path) assert.ok(cursor.advance(id(piece)), `cannot take ${piece}`);
  cursor.budget = budget;
  const logits = new Float32Array(PIECES.length).fill(1);
  cursor.apply(logits);
  return PIECES.filter((_, i) => logits[i] === 1);
}

describe('token masks', () => {
  it('allows exactly the tokens whose whole text the grammar takes next', () => {
    assert.deepEqual(allowed('\\{"ab?":12?\\}', []), ['{']);
    assert.deepEqual(allowed('\\{"ab?":12?\\}', ['{']), ['"']);
    assert.deepEqual(allowed('\\{"ab?":12?\\}', ['{', '"']), ['a', 'ab']);
    assert.deepEqual(allowed('\\{"ab?":12?\\}', ['{', '"', 'a']), ['"', '":', 'b']);
    assert.deepEqual(allowed('\\{"ab?":12?\\}', ['{', '"', 'ab', '":']), ['1', '12']);
  });

  it('never allows special tokens, pieces of a character or empty tokens, and lets eos end a whole match', () => {
    assert.deepEqual(allowed('[^]*', []), ['<eos>', ...PIECES.slice(2, -1)]);
    assert.deepEqual(allowed('a(?:bc)?', ['a']), ['<eos>', 'b']);
  });

  it('closes the text within the budget: with few tokens left only those that can still finish remain', () => {
    // `a` then any number of b, then c: with 2 tokens left after `a`, `b` still leaves one for `c`
    assert.deepEqual(allowed('ab*c', ['a'], 2), ['b', 'c']);
    assert.deepEqual(allowed('ab*c', ['a'], 1), ['c']);
    // where nothing fits, nothing is filtered: the row ends at its length
    assert.deepEqual(allowed('abbbbc', ['a'], 1), ['b']);
    // a whole match may end with eos; with no eos (ignore_eos) the text must go on, whatever the budget
    assert.deepEqual(allowed('a(?:bbbc)*', ['a'], 1), ['<eos>']);
    assert.deepEqual(allowed('a(?:bbbc)*', ['a'], 1, []), ['b']);
  });

  it('says when the text is complete and nothing may follow', () => {
    const cursor = new GrammarMasks('abc|ab', vocabulary).cursor([EOS]);
    assert.ok(cursor.advance(id('ab')));
    assert.ok(cursor.accepting && !cursor.complete);
    assert.ok(cursor.advance(id('c')));
    assert.ok(cursor.complete);
    assert.ok(!cursor.advance(id('c')), 'nothing follows a complete text');
  });

  it('keeps the grammars a model used lately, and refuses one its vocabulary cannot begin', () => {
    const grammars = new ModelGrammars(source, PIECES.length, 2);
    assert.ok(grammars.masks('a').cursor([EOS]).advance(id('a')));
    assert.throws(() => grammars.masks('é'), /no token of this model's vocabulary can begin/);
  });
});
