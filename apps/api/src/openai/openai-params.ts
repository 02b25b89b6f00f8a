/**
 * OpenAI request fields mapped onto TGI's `parameters`, so both APIs share one validation. As TGI does,
 * `temperature: 0` means greedy and a missing temperature samples at 1. TGI's own sampling fields are taken
 * too (`do_sample`, `top_k`, `typical_p`, `repetition_penalty`, `truncate`): @huggingface/inference sends a
 * text-generation call's `parameters` to /v1/completions that way.
 */
import type { FinishReason, TokenInfo } from '@switchyard/batching';
import { ApiError } from '../common/api-error';

type Body = Record<string, unknown>;
type Kind = 'chat' | 'completion';

export function requireObject(raw: unknown): Body {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw ApiError.validation('the request body must be a JSON object');
  }
  return raw as Body;
}

export function toTgiParameters(body: Body, defaultMaxTokens: number | null): Record<string, unknown> {
  const p: Record<string, unknown> = { details: true };
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (maxTokens !== undefined && maxTokens !== null) p.max_new_tokens = maxTokens;
  else if (defaultMaxTokens !== null) p.max_new_tokens = defaultMaxTokens;
  const t = body.temperature;
  // TGI's own parameters, as @huggingface/inference sends them to /v1/completions: do_sample: false is greedy
  for (const key of ['top_k', 'typical_p', 'repetition_penalty', 'truncate'] as const) {
    if (body[key] !== undefined && body[key] !== null) p[key] = body[key];
  }
  if (body.do_sample === false) {
    if (t !== undefined && t !== null && t !== 0)
      throw ApiError.validation('`do_sample: false` cannot take a `temperature`');
  } else if (t === undefined || t === null) p.do_sample = true;
  else if (typeof t !== 'number' || !Number.isFinite(t) || t < 0 || t > 2) {
    throw ApiError.validation('`temperature` must be a number from 0 to 2');
  } else if (t > 0) {
    p.temperature = t;
    p.do_sample = true;
  }
  if (body.top_p !== undefined && body.top_p !== null && body.top_p !== 1) p.top_p = body.top_p;
  if (body.stop !== undefined && body.stop !== null) p.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (body.seed !== undefined && body.seed !== null) p.seed = body.seed;
  if (body.frequency_penalty !== undefined && body.frequency_penalty !== null) {
    p.frequency_penalty = body.frequency_penalty;
  }
  const presence = body.presence_penalty;
  if (presence !== undefined && presence !== null && presence !== 0) {
    throw ApiError.validation('`presence_penalty` is not supported');
  }
  const n = body.n;
  if (n !== undefined && n !== null && n !== 1)
    throw ApiError.validation('`n` must be 1: several choices are not supported');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw ApiError.validation('`stream` must be a boolean');
  }
  return p;
}

const isSet = (v: unknown) => v !== undefined && v !== null;
const isEmpty = (v: unknown) =>
  (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/**
 * OpenAI fields whose meaning Switchyard does not implement are refused by name, not ignored: a client that asks
 * for tool calls, JSON mode or a logit bias and silently gets plain text would be misled.
 */
export function refuseUnsupported(body: Body, kind: Kind): void {
  const refuse = (what: string) => {
    throw ApiError.validation(`${what} is not supported`);
  };
  if (isSet(body.logit_bias) && !isEmpty(body.logit_bias)) refuse('`logit_bias`');
  if (kind === 'completion') {
    if (isSet(body.suffix)) refuse('`suffix`');
    if (isSet(body.best_of) && body.best_of !== 1) refuse('`best_of` other than 1');
    if (body.echo === true && isSet(body.logprobs)) refuse('`logprobs` with `echo`');
    return;
  }
  // tools the model is told not to call (`tool_choice: 'none'`) change nothing: the answer is text either way
  for (const [list, choice] of [
    ['tools', 'tool_choice'],
    ['functions', 'function_call'],
  ]) {
    const mode = body[choice];
    if (isSet(mode) && mode !== 'none' && mode !== 'auto') refuse(`\`${choice}\` (tool calls)`);
    if (isSet(body[list]) && !isEmpty(body[list]) && mode !== 'none') refuse(`\`${list}\` (tool calls)`);
  }
  const format = body.response_format;
  if (isSet(format) && (format as { type?: unknown }).type !== 'text') refuse('`response_format` other than text');
}

/**
 * What the request asks of logprobs: null for none, else how many alternatives per token (0: the chosen token's
 * logprob alone). Chat takes `logprobs: true` and `top_logprobs` (up to 20), completions `logprobs` (up to 5).
 */
export function requestedLogprobs(body: Body, kind: Kind): number | null {
  const count = (key: string, max: number): number | null => {
    const v = body[key];
    if (!isSet(v)) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
      throw ApiError.validation(`\`${key}\` must be an integer from 0 to ${max}`);
    }
    return v;
  };
  if (kind === 'completion') return count('logprobs', 5);
  const on = body.logprobs;
  if (isSet(on) && typeof on !== 'boolean') throw ApiError.validation('`logprobs` must be a boolean');
  const top = count('top_logprobs', 20);
  if (on === true) return top ?? 0;
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
  const options = body.stream_options;
  if (options === undefined || options === null) return false;
  if (typeof options !== 'object' || Array.isArray(options))
    throw ApiError.validation('`stream_options` must be an object');
  const value = (options as Body).include_usage;
  if (value !== undefined && value !== null && typeof value !== 'boolean') {
    throw ApiError.validation('`stream_options.include_usage` must be a boolean');
  }
  return value === true;
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
