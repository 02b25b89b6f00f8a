/**
 * OpenAI request fields mapped onto TGI's `parameters`, so both APIs share one validation. As TGI does,
 * `temperature: 0` means greedy and a missing temperature samples at 1. TGI's own sampling fields are taken
 * too (`do_sample`, `top_k`, `typical_p`, `repetition_penalty`, `truncate`): @huggingface/inference sends a
 * text-generation call's `parameters` to /v1/completions that way.
 */
import type { FinishReason } from '@switchyard/batching';
import { ApiError } from '../common/api-error';

type Body = Record<string, unknown>;

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
