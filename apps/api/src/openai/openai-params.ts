/**
 * OpenAI request fields mapped onto TGI's `parameters`, so both APIs share one validation. As TGI does,
 * `temperature: 0` means greedy and a missing temperature samples at 1. TGI's own sampling fields are taken
 * too (`do_sample`, `top_k`, `typical_p`, `repetition_penalty`, `truncate`): @huggingface/inference sends a
 * text-generation call's `parameters` to /v1/completions that way.
 */
import type { FinishReason, TokenInfo } from '@switchyard/batching';
import { ApiError } from '../common/api-error';
import type { ChatCompletionRequest, CompletionRequest } from './openai.schemas';

type Body = ChatCompletionRequest | CompletionRequest;
type Kind = 'chat' | 'completion';

export function toTgiParameters(body: Body, defaultMaxTokens: number | null): Record<string, unknown> {
  const p: Record<string, unknown> = { details: true };
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) p.max_new_tokens = maxTokens;
  else if (defaultMaxTokens !== null) p.max_new_tokens = defaultMaxTokens;
  const t = body.temperature;
  // TGI's own parameters, as @huggingface/inference sends them to /v1/completions: do_sample: false is greedy
  for (const key of [
    'top_k',
    'typical_p',
    'repetition_penalty',
    'truncate',
    'seed',
    'frequency_penalty',
    'presence_penalty',
    'logit_bias',
  ] as const) {
    if (body[key] != null) p[key] = body[key];
  }
  if (body.do_sample === false) {
    if (t != null && t !== 0) throw ApiError.validation('`do_sample: false` cannot take a `temperature`');
  } else if (t == null) p.do_sample = true;
  else if (t > 0) {
    p.temperature = t;
    p.do_sample = true;
  }
  if (body.top_p != null && body.top_p !== 1) p.top_p = body.top_p;
  if (body.stop != null) p.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  return p;
}

/**
 * What the request asks of logprobs: null for none, else how many alternatives per token (0: the chosen token's
 * logprob alone). Chat takes `logprobs: true` and `top_logprobs` (up to 20), completions `logprobs` (up to 5).
 */
export function requestedLogprobs(body: Body, kind: Kind): number | null {
  if (!('messages' in body)) return kind === 'completion' ? (body.logprobs ?? null) : null;
  const top = body.top_logprobs ?? null;
  if (body.logprobs === true) return top ?? 0;
  if (top !== null && top > 0) throw ApiError.validation('`top_logprobs` needs `logprobs: true`');
  return null;
}

const utf8 = (text: string) => Array.from(Buffer.from(text, 'utf8'));

/** One entry of a chat choice's `logprobs.content`: the token and its `top` alternatives. */
export function chatTokenLogprob(token: TokenInfo, top: readonly TokenInfo[]) {
  return {
    token: token.text,
    logprob: token.logprob,
    bytes: utf8(token.text),
    top_logprobs: top.map((t) => ({ token: t.text, logprob: t.logprob, bytes: utf8(t.text) })),
  };
}

/**
 * A completion choice's `logprobs` (the legacy shape) for these tokens, with their alternatives; the first token
 * starts at `offset` in the choice's text.
 */
export function completionLogprobs(
  tokens: readonly TokenInfo[],
  tops: readonly (readonly TokenInfo[])[],
  offset: number,
) {
  const textOffset: number[] = [];
  let at = offset;
  for (const t of tokens) {
    textOffset.push(at);
    at += t.text.length;
  }
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((_, i) => Object.fromEntries((tops[i] ?? []).map((t) => [t.text, t.logprob]))),
    text_offset: textOffset,
  };
}

/**
 * A choice's `logprobs` for these tokens and their alternatives, in the route's shape: chat's `{content, refusal}`,
 * or the completions' legacy shape with the first token at `offset` in the choice's text.
 */
export function choiceLogprobs(
  kind: Kind,
  tokens: readonly TokenInfo[],
  tops: readonly (readonly TokenInfo[])[],
  offset: number,
) {
  if (kind === 'completion') return completionLogprobs(tokens, tops, offset);
  return { content: tokens.map((token, i) => chatTokenLogprob(token, tops[i] ?? [])), refusal: null };
}

/** Whether a streamed response ends with a usage chunk. */
export function includeUsage(body: Body): boolean {
  return body.stream_options?.include_usage === true;
}

export function openAiFinishReason(reason: FinishReason): 'stop' | 'length' {
  return reason === 'length' ? 'length' : 'stop';
}

export function usage(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** OpenAI's SSE framing: `data: <json>`, and `data: [DONE]` at the end. */
export function sse(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}
