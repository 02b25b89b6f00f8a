import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadModel } from '@switchyard/models';
import { modelDir } from '../../../test/support/repo';
import { IncrementalDetokenizer } from './detokenizer';

describe('incremental detokenizer', async () => {
  const model = await loadModel(modelDir('demo-tiny'));
  const tokenizer = model.tokenizer;
  await model.release();

  for (const text of [
    'plain words, and more.',
    'Ünïcödé 🌍🚀 世界和平 — naïve café 😀!',
    '\u{1F468}\u200D\u{1F469}\u200D\u{1F467} family',
  ]) {
    it(`emits whole characters only, concatenating to the text: ${JSON.stringify(text)}`, () => {
      const ids = tokenizer.encode(text);
      const detokenizer = new IncrementalDetokenizer(tokenizer);
      const chunks = ids.map((id) => detokenizer.push(id));
      chunks.push(detokenizer.flush());
      for (const chunk of chunks) {
        assert.ok(chunk.isWellFormed() && !chunk.includes('\uFFFD'), `chunk ${JSON.stringify(chunk)}`);
      }
      assert.equal(chunks.join(''), text);
      assert.equal(detokenizer.text, text);
      if ([...text].some((ch) => ch.codePointAt(0)! > 0x7f))
        assert.ok(chunks.includes(''), 'some token ended inside a character and was held back');
    });
  }

  it('flushes a dangling partial character at the end', () => {
    const ids = tokenizer.encode('🌍');
    const detokenizer = new IncrementalDetokenizer(tokenizer);
    assert.ok(ids.length > 1);
    for (const id of ids.slice(0, -1)) assert.equal(detokenizer.push(id), '');
    assert.equal(detokenizer.flush(), tokenizer.decode(ids.slice(0, -1)));
  });
});
