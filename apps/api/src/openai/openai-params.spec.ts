import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenInfo } from '@switchyard/batching';
import { ApiError } from '../common/api-error';
import { chatTokenLogprob, completionLogprobs, refuseUnsupported, requestedLogprobs } from './openai-params';

const token = (text: string, logprob: number): TokenInfo => ({ id: 0, text, logprob, special: false });

/** The message of the 422 that `f` throws. */
function refusal(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 422);
    return err.message;
  }
  assert.fail('no error');
}

describe('OpenAI logprobs and unsupported fields', () => {
  it('reads what chat asks of logprobs: none, the chosen token alone, or with alternatives', () => {
    assert.equal(requestedLogprobs({}, 'chat'), null);
    assert.equal(requestedLogprobs({ logprobs: false, top_logprobs: 0 }, 'chat'), null);
    assert.equal(requestedLogprobs({ logprobs: true }, 'chat'), 0);
    assert.equal(requestedLogprobs({ logprobs: true, top_logprobs: 20 }, 'chat'), 20);
    assert.match(
      refusal(() => requestedLogprobs({ top_logprobs: 1 }, 'chat')),
      /needs `logprobs: true`/,
    );
    assert.match(
      refusal(() => requestedLogprobs({ logprobs: true, top_logprobs: 21 }, 'chat')),
      /0 to 20/,
    );
    assert.match(
      refusal(() => requestedLogprobs({ logprobs: true, top_logprobs: 1.5 }, 'chat')),
      /integer/,
    );
    assert.match(
      refusal(() => requestedLogprobs({ logprobs: 1 }, 'chat')),
      /boolean/,
    );
  });

  it('reads completions’ logprobs as a count up to 5', () => {
    assert.equal(requestedLogprobs({ logprobs: null }, 'completion'), null);
    assert.equal(requestedLogprobs({ logprobs: 0 }, 'completion'), 0);
    assert.equal(requestedLogprobs({ logprobs: 5 }, 'completion'), 5);
    assert.match(
      refusal(() => requestedLogprobs({ logprobs: 6 }, 'completion')),
      /0 to 5/,
    );
    assert.match(
      refusal(() => requestedLogprobs({ logprobs: true }, 'completion')),
      /integer/,
    );
  });

  it('refuses what it does not implement and lets its neutral values through', () => {
    for (const [body, field] of [
      [{ tools: [{}] }, /`tools`/],
      [{ functions: [{}] }, /`functions`/],
      [{ tool_choice: 'required' }, /`tool_choice`/],
      [{ function_call: { name: 'f' } }, /`function_call`/],
      [{ response_format: { type: 'json_object' } }, /`response_format`/],
      [{ response_format: 'text' }, /`response_format`/],
      [{ logit_bias: { 5: 1 } }, /`logit_bias`/],
    ] as const) {
      assert.match(
        refusal(() => refuseUnsupported(body, 'chat')),
        field,
      );
    }
    refuseUnsupported(
      { tools: [], functions: null, tool_choice: 'auto', response_format: { type: 'text' }, logit_bias: {} },
      'chat',
    );
    // tools the model must not call: the answer is plain text, as it would be without them
    refuseUnsupported({ tools: [{ type: 'function' }], tool_choice: 'none' }, 'chat');
    assert.match(
      refusal(() => refuseUnsupported({ tools: [{ type: 'function' }], tool_choice: 'auto' }, 'chat')),
      /`tools`/,
    );
    assert.match(
      refusal(() => refuseUnsupported({ suffix: '' }, 'completion')),
      /`suffix`/,
    );
    assert.match(
      refusal(() => refuseUnsupported({ best_of: 3 }, 'completion')),
      /`best_of`/,
    );
    assert.match(
      refusal(() => refuseUnsupported({ echo: true, logprobs: 0 }, 'completion')),
      /`echo`/,
    );
    refuseUnsupported({ best_of: 1, echo: true, logprobs: null }, 'completion');
  });

  it('shapes a chat token with its UTF-8 bytes and alternatives', () => {
    assert.deepEqual(chatTokenLogprob(token('é', -0.5), [token('é', -0.5), token('e', -1.5)]), {
      token: 'é',
      logprob: -0.5,
      bytes: [0xc3, 0xa9],
      top_logprobs: [
        { token: 'é', logprob: -0.5, bytes: [0xc3, 0xa9] },
        { token: 'e', logprob: -1.5, bytes: [0x65] },
      ],
    });
  });

  it('shapes completion logprobs with each token’s offset in the text', () => {
    const out = completionLogprobs([token('Once', -1), token(' upon', -2)], [[token('Once', -1)], []], 3);
    assert.deepEqual(out, {
      tokens: ['Once', ' upon'],
      token_logprobs: [-1, -2],
      top_logprobs: [{ Once: -1 }, {}],
      text_offset: [3, 7],
    });
  });
});
