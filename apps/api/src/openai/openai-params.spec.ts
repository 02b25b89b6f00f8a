import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TokenInfo } from '@switchyard/batching';
import { ApiError } from '../common/api-error';
import { parseWith } from '../common/schema';
import { chatTokenLogprob, completionLogprobs, requestedLogprobs } from './openai-params';
import { ChatCompletionRequest, CompletionRequest } from './openai.schemas';

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

const chat = (body: Record<string, unknown>) =>
  parseWith(ChatCompletionRequest, { messages: [{ role: 'user', content: 'hi' }], ...body });
const completion = (body: Record<string, unknown>) => parseWith(CompletionRequest, { prompt: 'hi', ...body });

describe('OpenAI requests: logprobs and unsupported fields', () => {
  it('reads what chat asks of logprobs: none, the chosen token alone, or with alternatives', () => {
    assert.equal(requestedLogprobs(chat({}), 'chat'), null);
    assert.equal(requestedLogprobs(chat({ logprobs: false, top_logprobs: 0 }), 'chat'), null);
    assert.equal(requestedLogprobs(chat({ logprobs: true }), 'chat'), 0);
    assert.equal(requestedLogprobs(chat({ logprobs: true, top_logprobs: 20 }), 'chat'), 20);
    assert.match(
      refusal(() => requestedLogprobs(chat({ top_logprobs: 1 }), 'chat')),
      /needs `logprobs: true`/,
    );
    assert.match(
      refusal(() => chat({ logprobs: true, top_logprobs: 21 })),
      /0 to 20/,
    );
    assert.match(
      refusal(() => chat({ logprobs: true, top_logprobs: 1.5 })),
      /integer/,
    );
    assert.match(
      refusal(() => chat({ logprobs: 1 })),
      /`logprobs` must be a boolean/,
    );
  });

  it('reads completions’ logprobs as a count up to 5', () => {
    assert.equal(requestedLogprobs(completion({ logprobs: null }), 'completion'), null);
    assert.equal(requestedLogprobs(completion({ logprobs: 0 }), 'completion'), 0);
    assert.equal(requestedLogprobs(completion({ logprobs: 5 }), 'completion'), 5);
    assert.match(
      refusal(() => completion({ logprobs: 6 })),
      /0 to 5/,
    );
    assert.match(
      refusal(() => completion({ logprobs: true })),
      /`logprobs` must be a number/,
    );
  });

  it('refuses what it does not implement, by name, and lets its neutral values through', () => {
    const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object' } } };
    for (const [body, field] of [
      [{ tools: [{}] }, /`tools\[\]` must be a function tool|`tools\[\]\.type`/],
      [{ tools: [{ type: 'function', function: { name: 'a b' } }] }, /`tools\[\]\.function\.name` must be 1 to 64/],
      [{ tools: [tool, tool] }, /`tools` names `f` twice/],
      [{ functions: [{}] }, /`functions`/],
      [{ tool_choice: 'required' }, /`tool_choice` needs `tools`/],
      [{ tools: [tool], tool_choice: { type: 'function', function: { name: 'g' } } }, /`g`, which is not in `tools`/],
      [{ tool_choice: 'sometimes' }, /`tool_choice` must be none, auto, required/],
      [{ function_call: { name: 'f' } }, /`function_call`/],
      [{ response_format: { type: 'yaml' } }, /`response_format` must be/],
      [{ response_format: 'text' }, /`response_format`/],
      [{ response_format: { type: 'json_schema' } }, /`response_format\.json_schema`/],
      [{ tools: [tool], response_format: { type: 'json_object' } }, /cannot be combined with tool calls/],
      [{ logit_bias: { 5: 101 } }, /`logit_bias` must be an object of token ids to biases from -100 to 100/],
      [{ logit_bias: { x: 1 } }, /`logit_bias` must be an object of token ids/],
      [{ presence_penalty: 2.5 }, /`presence_penalty` must be >= -2.0 and <= 2.0/],
      [{ n: 0 }, /`n` must be an integer from 1 to 8/],
      [{ n: 9 }, /`n` must be an integer from 1 to 8/],
      [{ best_of: 2 }, /`best_of` is not a field this route takes/],
      [{ frobnicate: 1, zap: 2 }, /`frobnicate`, `zap` are not fields this route takes/],
      [{ messages: [{ role: 'tool', content: 'x' }] }, /`messages\[0\]\.tool_call_id` must be given/],
      [{ messages: [{ role: 'user', content: null }] }, /`messages\[0\]\.content` must be text/],
    ] as const) {
      assert.match(
        refusal(() => chat(body)),
        field,
      );
    }
    chat({ tools: [], functions: null, tool_choice: 'auto', response_format: { type: 'text' }, logit_bias: {} });
    chat({
      tools: [tool],
      tool_choice: 'none',
      n: 8,
      user: 'u',
      metadata: { a: 'b' },
      store: false,
      service_tier: 'auto',
    });
    chat({
      messages: [
        { role: 'user', content: 'hi' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '42' },
      ],
      tools: [tool],
    });
    for (const [body, field] of [
      [{ suffix: '' }, /`suffix`/],
      [{ best_of: 9 }, /`best_of` must be an integer from 1 to 8/],
      [{ n: 3, best_of: 2 }, /`best_of` must be at least `n`/],
      [{ best_of: 2, stream: true }, /`best_of` is not supported with `stream`/],
      [{ echo: true, logprobs: 0, stream: true }, /`echo` with `logprobs` is not supported with `stream`/],
      [{ grammar: { type: 'yaml', value: '' } }, /`grammar` must be/],
      [{ tools: [] }, /`tools` is not a field this route takes/],
      [{ return_full_text: true }, /`return_full_text` is not a field/],
    ] as const) {
      assert.match(
        refusal(() => completion(body)),
        field,
      );
    }
    completion({ best_of: 3, n: 2, echo: true, logprobs: 1, user: 'u' });
  });

  it('names the message and the field that is wrong', () => {
    assert.match(
      refusal(() => chat({ messages: 'hi' })),
      /`messages` must be a non-empty array/,
    );
    assert.match(
      refusal(() => chat({ messages: [] })),
      /`messages` must be a non-empty array/,
    );
    assert.match(
      refusal(() => chat({ messages: [{ role: 'robot', content: 'x' }] })),
      /`messages\[0\]\.role` must be system, user, assistant, tool or developer/,
    );
    assert.match(
      refusal(() =>
        chat({
          messages: [
            { role: 'user', content: 'a' },
            { role: 'user', content: 5 },
          ],
        }),
      ),
      /`messages\[1\]\.content` must be a string or a list of text parts/,
    );
    assert.match(
      refusal(() => completion({ prompt: ['a', 'b'] })),
      /`prompt` must be a string or a list of one string/,
    );
    assert.equal(completion({ prompt: ['a'] }).prompt, 'a');
    assert.match(
      refusal(() => chat({ stream: 'yes' })),
      /`stream` must be a boolean/,
    );
    assert.match(
      refusal(() => chat({ temperature: 3 })),
      /`temperature` must be a number from 0 to 2/,
    );
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
