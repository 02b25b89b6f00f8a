/**
 * The engine's side of generation parameters: their defaults, the limits requests are held to, the smallest
 * values its arithmetic takes, and the error it throws for a request it cannot run. The API parses and checks
 * a client's `parameters` against these (`apps/api/src/generation/validate-request.ts`).
 */
import type { GenerationParameters } from './types';

export interface ValidationLimits {
  maxStopSequences: number;
  maxBestOf: number;
  maxTopNTokens: number;
  maxInputTokens: number;
  maxTotalTokens: number;
}

export const DEFAULT_VALIDATION_LIMITS: Omit<ValidationLimits, 'maxInputTokens' | 'maxTotalTokens'> = {
  maxStopSequences: 4,
  maxBestOf: 2,
  maxTopNTokens: 5,
};

/**
 * The smallest `temperature` and `repetition_penalty` taken. Below them the sampler's arithmetic leaves float
 * range (1 / 5e-324 is Infinity, a logit divided by 1e-300 overflows float32) and logprobs come out NaN. TGI only
 * asks for > 0; vLLM treats a temperature under 1e-5 as greedy. Here a value under the minimum is refused by
 * name, so a client that wants greedy says so (`do_sample: false`, or OpenAI's `temperature: 0`).
 */
export const MIN_TEMPERATURE = 1e-4;
export const MIN_REPETITION_PENALTY = 1e-4;

/** A request TGI would answer with 422 and `error_type: "validation"`. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  readonly errorType = 'validation';
}

/** Defaults for every parameter: greedy, no penalties, `maxNewTokens` as given. */
export function defaultParameters(overrides: Partial<GenerationParameters> = {}): GenerationParameters {
  return {
    doSample: false,
    temperature: 1,
    topK: null,
    topP: null,
    typicalP: null,
    repetitionPenalty: 1,
    frequencyPenalty: 0,
    presencePenalty: 0,
    logitBias: [],
    seed: null,
    maxNewTokens: 20,
    stop: [],
    details: true,
    decoderInputDetails: false,
    topNTokens: 0,
    bestOf: 1,
    returnFullText: false,
    truncate: null,
    ignoreEos: false,
    grammar: null,
    ...overrides,
  };
}
