import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { modelDir } from '../../../test/support/repo';
import { loadTokenizer, longestToken } from './tokenizer';

describe('ModelTokenizer.charBound', () => {
  const dir = modelDir('demo-small');
  const tokenizer = loadTokenizer(dir);

  it('is the longest vocabulary entry, counted from tokenizer.json itself', () => {
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number> };
      added_tokens: { content: string }[];
    };
    const longest = Math.max(
      ...Object.keys(json.model.vocab).map((t) => t.length),
      ...json.added_tokens.map((t) => t.content.length),
    );
    assert.equal(tokenizer.maxTokenChars, longest);
    assert.equal(
      longestToken({
        model: {
          vocab: [
            ['▁a', 0],
            ['▁abcdef', -1],
          ],
        },
      }),
      7,
    ); // Unigram's [piece, score]
    assert.equal(longestToken({ model: {} }), Infinity); // nothing to bound by: never refuse on length
  });

  it('never refuses a text that fits: dense texts stay within the bound of their own token count', () => {
    // texts that pack the most characters into each token the vocabulary allows
    const dense = [' '.repeat(4000), 'a'.repeat(4000), '─'.repeat(2000), 'the '.repeat(1000)];
    for (const text of dense) {
      const tokens = tokenizer.encode(text, false).length;
      assert.ok(
        text.length <= tokenizer.charBound(tokens),
        `${JSON.stringify(text.slice(0, 8))}: ${text.length} characters in ${tokens} tokens`,
      );
    }
  });
});
