import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FinalEvent, TokenInfo } from '@switchyard/batching';
import { answerChoice, bestOf, echoedLogprobs } from './openai-answer';

const token = (text: string, logprob: number, special = false): TokenInfo => ({ id: 1, text, logprob, special });

function final(text: string, tokens: TokenInfo[], finishReason: 'length' | 'eos_token' = 'eos_token'): FinalEvent {
  return {
    type: 'final',
    generatedText: text,
    details: {
      finishReason,
      generatedTokens: tokens.length,
      seed: null,
      prefill: [],
      tokens,
      topTokens: tokens.map(() => []),
    },
    queueMs: 0,
    inferenceMs: 0,
    inputTokens: 3,
  };
}

describe('OpenAI answers from their generations', () => {
  it('best_of keeps the n of highest total logprob, best first', () => {
    const samples = [-5, -1, -3, -2].map((score, i) => ({
      final: final(`s${i}`, [token('a', score / 2), token('b', score / 2)]),
      echo: false,
    }));
    assert.deepEqual(
      bestOf(samples, 2).map((s) => s.final.generatedText),
      ['s1', 's3'],
    );
  });

  it('reads tool calls out of a chat answer, and leaves text and cut-off calls as text', () => {
    const opts = { kind: 'chat' as const, logprobs: null, toolCalls: true };
    const calls = answerChoice(
      { final: final('[{"name":"f","arguments":{"a":1}},{"name":"g","arguments":{}}]', []), echo: false },
      1,
      opts,
    ) as { index: number; message: { content: null; tool_calls: { function: unknown }[] }; finish_reason: string };
    assert.equal(calls.index, 1);
    assert.equal(calls.finish_reason, 'tool_calls');
    assert.equal(calls.message.content, null);
    assert.deepEqual(
      calls.message.tool_calls.map((c) => c.function),
      [
        { name: 'f', arguments: '{"a":1}' },
        { name: 'g', arguments: '{}' },
      ],
    );
    const cut = answerChoice({ final: final('{"name":"f","argu', [], 'length'), echo: false }, 0, opts);
    assert.deepEqual(cut, {
      index: 0,
      message: { role: 'assistant', content: '{"name":"f","argu' },
      logprobs: null,
      finish_reason: 'length',
    });
    // without tools in play, JSON is just text
    const text = answerChoice({ final: final('{"name":"f","arguments":{}}', []), echo: false }, 0, {
      ...opts,
      toolCalls: false,
    }) as { message: { content: string } };
    assert.equal(text.message.content, '{"name":"f","arguments":{}}');
  });

  it('echo with logprobs: prompt tokens first, the first with no logprob, offsets across the whole text', () => {
    const f = final('Hi there!', [token(' there', -1), token('!', -2), token('</s>', -0.1, true)]);
    f.details.prefill = [
      { id: 1, text: 'H', logprob: null },
      { id: 2, text: 'i', logprob: -3 },
    ];
    assert.deepEqual(echoedLogprobs(f, 1), {
      tokens: ['H', 'i', ' there', '!'],
      token_logprobs: [null, -3, -1, -2],
      top_logprobs: [null, { i: -3 }, {}, {}],
      text_offset: [0, 1, 2, 8],
    });
    assert.deepEqual(echoedLogprobs(f, 0).top_logprobs.slice(0, 2), [null, null]);
  });
});
