import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkStop, StopCriteria } from './stopping';

const criteria: StopCriteria = { eosTokenIds: [0, 2], stop: ['\n\n', 'END'], maxNewTokens: 10, maxTotalTokens: 100 };
const base = { tokenId: 7, generatedTokens: 1, inputTokens: 5, text: 'a', previousTextLength: 0 };

describe('checkStop', () => {
  it('stops on any eos id', () => {
    assert.equal(checkStop({ ...base, tokenId: 2 }, criteria), 'eos_token');
    assert.equal(checkStop({ ...base, tokenId: 0 }, criteria), 'eos_token');
    assert.equal(checkStop(base, criteria), null);
  });

  it('finds a stop sequence completed by the newest text, even across tokens', () => {
    assert.equal(checkStop({ ...base, text: 'the E', previousTextLength: 4 }, criteria), null);
    assert.equal(checkStop({ ...base, text: 'the EN', previousTextLength: 5 }, criteria), null);
    assert.equal(checkStop({ ...base, text: 'the END', previousTextLength: 6 }, criteria), 'stop_sequence');
    assert.equal(checkStop({ ...base, text: 'line\n\nmore', previousTextLength: 5 }, criteria), 'stop_sequence');
  });

  it('does not find a stop sequence again in old text', () => {
    // Old text is only searched where a new match could start; a token that adds no text cannot stop.
    assert.equal(checkStop({ ...base, text: 'abc', previousTextLength: 3 }, { ...criteria, stop: ['b'] }), null);
  });

  it('stops at max_new_tokens and at the model’s total-token limit', () => {
    assert.equal(checkStop({ ...base, generatedTokens: 10 }, criteria), 'length');
    assert.equal(checkStop({ ...base, generatedTokens: 9 }, criteria), null);
    assert.equal(checkStop({ ...base, generatedTokens: 5, inputTokens: 95 }, criteria), 'length');
  });
});
