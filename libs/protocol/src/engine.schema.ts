/**
 * Schemas for the engine's types that cross Redis inside the protocol's shapes: a job's generation parameters and
 * the token, final and error events. The engine (libs/batching) declares them as interfaces and knows nothing of
 * Redis; these schemas are checked against those interfaces at compile time, so the two cannot drift apart.
 */
import type { ErrorEvent, FinalEvent, GenerationParameters, TokenEvent } from '@switchyard/batching';
import { z } from 'zod';

/** True when A and B are assignable both ways: a schema's output and the interface it must parse to. */
export type SameShape<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/** A compile-time check that takes no runtime: `sameShape<SameShape<X, Y>>(true)` fails to compile unless equal. */
export function sameShape<T extends true>(_proof: T): void {}

export const generationParametersSchema = z.object({
  doSample: z.boolean(),
  temperature: z.number(),
  topK: z.int().nullable(),
  topP: z.number().nullable(),
  typicalP: z.number().nullable(),
  repetitionPenalty: z.number(),
  frequencyPenalty: z.number(),
  seed: z.number().nullable(),
  maxNewTokens: z.int(),
  stop: z.array(z.string()),
  details: z.boolean(),
  decoderInputDetails: z.boolean(),
  topNTokens: z.int(),
  bestOf: z.int(),
  returnFullText: z.boolean(),
  truncate: z.int().nullable(),
  ignoreEos: z.boolean(),
});
sameShape<SameShape<z.output<typeof generationParametersSchema>, GenerationParameters>>(true);

const tokenInfoSchema = z.object({ id: z.int(), text: z.string(), logprob: z.number(), special: z.boolean() });

export const tokenEventSchema = z.object({
  type: z.literal('token'),
  /** 0-based index of the generated token. */
  index: z.int(),
  token: tokenInfoSchema,
  topTokens: z.array(tokenInfoSchema),
});
sameShape<SameShape<z.output<typeof tokenEventSchema>, TokenEvent>>(true);

const sequenceDetailsSchema = z.object({
  finishReason: z.enum(['length', 'eos_token', 'stop_sequence']),
  generatedTokens: z.int(),
  seed: z.number().nullable(),
  prefill: z.array(z.object({ id: z.int(), text: z.string(), logprob: z.number().nullable() })),
  tokens: z.array(tokenInfoSchema),
  topTokens: z.array(z.array(tokenInfoSchema)),
});

export const finalEventSchema = z.object({
  type: z.literal('final'),
  generatedText: z.string(),
  details: sequenceDetailsSchema.extend({
    bestOfSequences: z.array(sequenceDetailsSchema.extend({ generatedText: z.string() })).optional(),
  }),
  queueMs: z.number(),
  inferenceMs: z.number(),
  inputTokens: z.int(),
});
sameShape<SameShape<z.output<typeof finalEventSchema>, FinalEvent>>(true);

export const errorEventSchema = z.object({
  type: z.literal('error'),
  errorType: z.enum(['cancelled', 'generation', 'overloaded', 'validation']),
  message: z.string(),
});
sameShape<SameShape<z.output<typeof errorEventSchema>, ErrorEvent>>(true);
