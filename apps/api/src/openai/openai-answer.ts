/**
 * A /v1 answer's choices, built from the generations that served them: the text or the tool calls, the finish
 * reason, the logprobs in the route's shape, and the ranking that `best_of` answers with. Pure: the controller
 * runs the generations and writes what these return.
 */
import type { FinalEvent, TokenInfo } from '@switchyard/batching';
import { choiceLogprobs, openAiFinishReason } from './openai-params';
import { parseToolCalls } from './tool-calls';

export type Kind = 'chat' | 'completion';

/** One generation as the answer needs it. */
export interface Sample {
  /** With `echo` (TGI's `return_full_text`), its `generatedText` starts with the prompt: the engine puts it there. */
  final: FinalEvent;
  echo: boolean;
}

export interface AnswerOptions {
  kind: Kind;
  /** Alternatives per token (`requestedLogprobs`), or null for no logprobs. */
  logprobs: number | null;
  /** Whether the answer may be tool calls (chat with tools). */
  toolCalls: boolean;
}

/** A generation's score for `best_of`: its tokens' total logprob. */
export function totalLogprob(final: FinalEvent): number {
  return final.details.tokens.reduce((sum, t) => sum + t.logprob, 0);
}

/** The `n` samples of highest total logprob, best first. */
export function bestOf<S extends Sample>(samples: readonly S[], n: number): S[] {
  return [...samples].sort((a, b) => totalLogprob(b.final) - totalLogprob(a.final)).slice(0, n);
}

/** The generated tokens that show in the text (special ones do not), with their alternatives. */
function shownTokens(final: FinalEvent): { tokens: TokenInfo[]; tops: TokenInfo[][] } {
  const { tokens, topTokens } = final.details;
  const kept = tokens.flatMap((token, i) => (token.special ? [] : [i]));
  return { tokens: kept.map((i) => tokens[i]), tops: kept.map((i) => topTokens[i] ?? []) };
}

/**
 * A completion's logprobs with `echo`: the prompt's tokens first (from TGI's `decoder_input_details`; the first
 * has no logprob, and a prompt token's alternatives are itself alone), then the generated ones.
 */
export function echoedLogprobs(final: FinalEvent, alternatives: number) {
  const { tokens, tops } = shownTokens(final);
  const generated = choiceLogprobs('completion', tokens, tops, 0) as {
    tokens: string[];
    token_logprobs: (number | null)[];
    top_logprobs: (Record<string, number> | null)[];
    text_offset: number[];
  };
  const prompt = final.details.prefill;
  const offsets: number[] = [];
  let at = 0;
  for (const p of prompt) {
    offsets.push(at);
    at += p.text.length;
  }
  return {
    tokens: [...prompt.map((p) => p.text), ...generated.tokens],
    token_logprobs: [...prompt.map((p) => p.logprob), ...generated.token_logprobs],
    top_logprobs: [
      ...prompt.map((p) => (p.logprob === null || alternatives === 0 ? null : { [p.text]: p.logprob })),
      ...generated.top_logprobs,
    ],
    text_offset: [...offsets, ...generated.text_offset.map((o) => o + at)],
  };
}

/** One choice of a non-streamed answer. */
export function answerChoice(sample: Sample, index: number, opts: AnswerOptions) {
  const { final } = sample;
  const text = final.generatedText;
  let logprobs: unknown = null;
  if (opts.logprobs !== null) {
    if (sample.echo && final.details.prefill.length > 0) logprobs = echoedLogprobs(final, opts.logprobs);
    else {
      const { tokens, tops } = shownTokens(final);
      logprobs = choiceLogprobs(opts.kind, tokens, tops, 0);
    }
  }
  const finish_reason = openAiFinishReason(final.details.finishReason);
  if (opts.kind === 'completion') return { index, text, logprobs, finish_reason };
  const calls = opts.toolCalls ? parseToolCalls(final.generatedText) : null;
  if (calls) {
    return {
      index,
      message: { role: 'assistant', content: null, tool_calls: calls },
      logprobs,
      finish_reason: 'tool_calls',
    };
  }
  return { index, message: { role: 'assistant', content: text }, logprobs, finish_reason };
}
