/**
 * The engine's contract: what a validated request carries and what it emits. Each shape is a zod schema, and its
 * type is derived from it: the worker's job payload and the API's stream events (libs/protocol) parse with the
 * same schemas, so one declaration serves the engine, the queue and the stream.
 */
import { z } from 'zod';

/** Why a sequence ended, with TGI's names. */
export const finishReasonSchema = z.enum(['length', 'eos_token', 'stop_sequence']);
export type FinishReason = z.output<typeof finishReasonSchema>;

/** TGI's `parameters`, after validation: every field has its final value. */
export const generationParametersSchema = z.object({
  doSample: z.boolean(),
  /** 1 when absent; applies only when sampling. */
  temperature: z.number(),
  topK: z.int().nullable(),
  topP: z.number().nullable(),
  typicalP: z.number().nullable(),
  /** Hugging Face's multiplicative penalty over prompt and generated tokens; 1 is none. */
  repetitionPenalty: z.number(),
  /** OpenAI's additive penalty, times the count of each token generated so far; 0 is none. */
  frequencyPenalty: z.number(),
  /** OpenAI's additive penalty on every token generated at least once; 0 is none. */
  presencePenalty: z.number(),
  /** OpenAI's `logit_bias` as [token id, bias] pairs, added to the logits; -100 bans a token, 100 forces it. */
  logitBias: z.array(z.tuple([z.int(), z.number()])),
  /** The seed of the row's own generator; always set when sampling, so a result can be reproduced. */
  seed: z.number().nullable(),
  maxNewTokens: z.int(),
  stop: z.array(z.string()),
  details: z.boolean(),
  decoderInputDetails: z.boolean(),
  topNTokens: z.int(),
  bestOf: z.int(),
  returnFullText: z.boolean(),
  truncate: z.int().nullable(),
  /** Generate past the model's eos tokens (vLLM's `ignore_eos`): fixed-length outputs for benchmarks. */
  ignoreEos: z.boolean(),
  /**
   * Constrained decoding: a regular expression (JavaScript syntax, `u` flag) that the generated text must match in
   * full, or null. JSON Schemas, JSON mode and tool calls reach the engine compiled to one (see `constraints`).
   */
  grammar: z.string().nullable(),
});
export type GenerationParameters = z.output<typeof generationParametersSchema>;

const tokenInfoSchema = z.object({ id: z.int(), text: z.string(), logprob: z.number(), special: z.boolean() });
export type TokenInfo = z.output<typeof tokenInfoSchema>;

/** A prompt token with its logprob under the model (null for the first one), for `decoder_input_details`. */
const prefillTokenSchema = z.object({ id: z.int(), text: z.string(), logprob: z.number().nullable() });
export type PrefillToken = z.output<typeof prefillTokenSchema>;

export const tokenEventSchema = z.object({
  type: z.literal('token'),
  /** 0-based index of the generated token. */
  index: z.int(),
  token: tokenInfoSchema,
  /** The `top_n_tokens` most likely tokens at this step, when asked for. */
  topTokens: z.array(tokenInfoSchema),
});
export type TokenEvent = z.output<typeof tokenEventSchema>;

const sequenceDetailsSchema = z.object({
  finishReason: finishReasonSchema,
  generatedTokens: z.int(),
  seed: z.number().nullable(),
  prefill: z.array(prefillTokenSchema),
  tokens: z.array(tokenInfoSchema),
  topTokens: z.array(z.array(tokenInfoSchema)),
});
export type SequenceDetails = z.output<typeof sequenceDetailsSchema>;

const generationDetailsSchema = sequenceDetailsSchema.extend({
  /** With `best_of` > 1: the sequences that were not chosen. */
  bestOfSequences: z.array(sequenceDetailsSchema.extend({ generatedText: z.string() })).optional(),
});
export type GenerationDetails = z.output<typeof generationDetailsSchema>;

export const finalEventSchema = z.object({
  type: z.literal('final'),
  generatedText: z.string(),
  details: generationDetailsSchema,
  /** Milliseconds waiting for admission, then from admission to the last token. */
  queueMs: z.number(),
  inferenceMs: z.number(),
  /** Prompt tokens after truncation. */
  inputTokens: z.int(),
});
export type FinalEvent = z.output<typeof finalEventSchema>;

export const errorEventSchema = z.object({
  type: z.literal('error'),
  /** TGI's error types: `cancelled` when the client went away, `generation` when the model failed. */
  errorType: z.enum(['cancelled', 'generation', 'overloaded', 'validation']),
  message: z.string(),
});
export type ErrorEvent = z.output<typeof errorEventSchema>;

export type EngineEvent = TokenEvent | FinalEvent | ErrorEvent;

/** A validated request as the engine takes it: token ids already computed, parameters final. */
export interface EngineRequest {
  id: string;
  inputIds: number[];
  /** The prompt's text, needed only for `return_full_text`. */
  inputText?: string;
  parameters: GenerationParameters;
  /** Aborting it cancels the request: dropped from the queue, or from the batch at the next step. */
  signal?: AbortSignal;
}

/** Receives a request's events in order; called synchronously from the engine loop, so it must not block. */
export type EventSink = (event: EngineEvent) => void;
