/**
 * TGI's `parameters` object: type checks, range checks and limits, with TGI's messages, turning a client's JSON
 * into `GenerationParameters` and the prompt into token ids. The API runs this before anything is queued.
 */
import { randomSeed } from './rng';
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

type Raw = Record<string, unknown>;

function num(raw: Raw, name: string): number | null {
  const v = raw[name];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValidationError(`\`${name}\` must be a number`);
  return v;
}

function int(raw: Raw, name: string): number | null {
  const v = num(raw, name);
  if (v !== null && !Number.isInteger(v)) throw new ValidationError(`\`${name}\` must be an integer`);
  return v;
}

function bool(raw: Raw, name: string, fallback: boolean): boolean {
  const v = raw[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new ValidationError(`\`${name}\` must be a boolean`);
  return v;
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
    ...overrides,
  };
}

/**
 * Checks parameters stored to apply under every request (a model's `default_parameters`) by the rules a request
 * carrying them meets, streaming or not, with a one-token prompt: values that would fail every request to the
 * model are refused when they are saved. Needs no tokenizer.
 */
export function validateDefaultParameters(raw: unknown, limits: ValidationLimits): void {
  for (const stream of [false, true]) validateRequest('x', raw, () => [0], limits, { stream });
}

export interface ValidatedRequest {
  inputIds: number[];
  parameters: GenerationParameters;
}

export interface ValidateOptions {
  /** Streaming routes refuse `best_of` > 1 and `decoder_input_details`. */
  stream: boolean;
}

/**
 * Validates `inputs` and `parameters` as TGI's router does and returns the prompt's token ids (truncated if
 * asked) with the final parameters. `encode` is the model's tokenizer.
 */
export function validateRequest(
  inputs: unknown,
  rawParameters: unknown,
  encode: (text: string) => number[],
  limits: ValidationLimits,
  options: ValidateOptions = { stream: false },
): ValidatedRequest {
  if (typeof inputs !== 'string') throw new ValidationError('`inputs` must be a string');
  if (inputs.length === 0) throw new ValidationError('`inputs` cannot be empty');
  if (
    rawParameters !== undefined &&
    rawParameters !== null &&
    (typeof rawParameters !== 'object' || Array.isArray(rawParameters))
  ) {
    throw new ValidationError('`parameters` must be an object');
  }
  const raw = (rawParameters ?? {}) as Raw;
  for (const unsupported of ['watermark', 'grammar', 'adapter_id'] as const) {
    const v = raw[unsupported];
    if (v !== undefined && v !== null && v !== false) throw new ValidationError(`\`${unsupported}\` is not supported`);
  }

  const temperature = num(raw, 'temperature');
  if (temperature !== null && temperature <= 0) throw new ValidationError('`temperature` must be strictly positive');
  if (temperature !== null && temperature < MIN_TEMPERATURE) {
    throw new ValidationError(
      `\`temperature\` must be >= ${MIN_TEMPERATURE} (greedy decoding is \`do_sample: false\`, or \`temperature: 0\` on /v1)`,
    );
  }
  const repetitionPenalty = num(raw, 'repetition_penalty');
  if (repetitionPenalty !== null && repetitionPenalty <= 0) {
    throw new ValidationError('`repetition_penalty` must be strictly positive');
  }
  if (repetitionPenalty !== null && repetitionPenalty < MIN_REPETITION_PENALTY) {
    throw new ValidationError(`\`repetition_penalty\` must be >= ${MIN_REPETITION_PENALTY}`);
  }
  const frequencyPenalty = num(raw, 'frequency_penalty');
  if (frequencyPenalty !== null && (frequencyPenalty < -2 || frequencyPenalty > 2)) {
    throw new ValidationError('`frequency_penalty` must be >= -2.0 and <= 2.0');
  }
  const topP = num(raw, 'top_p');
  if (topP !== null && (topP <= 0 || topP >= 1)) throw new ValidationError('`top_p` must be > 0.0 and < 1.0');
  const typicalP = num(raw, 'typical_p');
  if (typicalP !== null && (typicalP <= 0 || typicalP >= 1)) {
    throw new ValidationError('`typical_p` must be > 0.0 and < 1.0');
  }
  const topK = int(raw, 'top_k');
  if (topK !== null && topK <= 0) throw new ValidationError('`top_k` must be strictly positive');

  const hasWarpers = (temperature !== null && temperature !== 1) || topK !== null || topP !== null || typicalP !== null;
  const doSample = bool(raw, 'do_sample', false) || hasWarpers;

  const bestOf = int(raw, 'best_of') ?? 1;
  if (bestOf <= 0 || bestOf > limits.maxBestOf) {
    throw new ValidationError(`\`best_of\` must be > 0 and <= ${limits.maxBestOf}. Given: ${bestOf}`);
  }
  const seedRaw = raw.seed;
  if (
    seedRaw !== undefined &&
    seedRaw !== null &&
    (typeof seedRaw !== 'number' || !Number.isSafeInteger(seedRaw) || seedRaw < 0)
  ) {
    throw new ValidationError('`seed` must be a non-negative integer');
  }
  if (bestOf > 1) {
    if (options.stream) throw new ValidationError('`best_of` != 1 is not supported when streaming tokens');
    if (!doSample) throw new ValidationError('you must use sampling when `best_of` is > 1');
    if (seedRaw !== undefined && seedRaw !== null)
      throw new ValidationError('`seed` must not be set when `best_of` > 1');
  }
  const topNTokens = int(raw, 'top_n_tokens') ?? 0;
  if (topNTokens < 0 || topNTokens > limits.maxTopNTokens) {
    throw new ValidationError(`\`top_n_tokens\` must be >= 0 and <= ${limits.maxTopNTokens}. Given: ${topNTokens}`);
  }
  const decoderInputDetails = bool(raw, 'decoder_input_details', false);
  if (decoderInputDetails && options.stream) {
    throw new ValidationError('`decoder_input_details` == true is not supported when streaming tokens');
  }

  let stop: string[] = [];
  if (raw.stop !== undefined && raw.stop !== null) {
    if (!Array.isArray(raw.stop) || !raw.stop.every((s) => typeof s === 'string')) {
      throw new ValidationError('`stop` must be a list of strings');
    }
    stop = (raw.stop as string[]).filter((s) => s.length > 0);
    if (raw.stop.length > limits.maxStopSequences) {
      throw new ValidationError(
        `\`stop\` supports up to ${limits.maxStopSequences} stop sequences. Given: ${raw.stop.length}`,
      );
    }
  }

  const truncate = int(raw, 'truncate');
  if (truncate !== null && (truncate <= 0 || truncate > limits.maxInputTokens)) {
    throw new ValidationError(
      `\`truncate\` must be strictly positive and less than ${limits.maxInputTokens}. Given: ${truncate}`,
    );
  }

  let inputIds = encode(inputs);
  if (truncate !== null && inputIds.length > truncate) inputIds = inputIds.slice(inputIds.length - truncate);
  const inputLength = inputIds.length;
  if (inputLength === 0) throw new ValidationError('`inputs` cannot be empty');
  if (inputLength > limits.maxInputTokens) {
    throw new ValidationError(`\`inputs\` tokens must be <= ${limits.maxInputTokens}. Given: ${inputLength}`);
  }

  const maxNewTokensRaw = int(raw, 'max_new_tokens');
  if (maxNewTokensRaw !== null && maxNewTokensRaw <= 0)
    throw new ValidationError('`max_new_tokens` must be strictly positive');
  const maxNewTokens = maxNewTokensRaw ?? Math.max(1, limits.maxTotalTokens - inputLength);
  if (inputLength + maxNewTokens > limits.maxTotalTokens) {
    throw new ValidationError(
      `\`inputs\` tokens + \`max_new_tokens\` must be <= ${limits.maxTotalTokens}. Given: ${inputLength} \`inputs\` tokens and ${maxNewTokens} \`max_new_tokens\``,
    );
  }

  return {
    inputIds,
    parameters: {
      doSample,
      temperature: temperature ?? 1,
      topK,
      topP,
      typicalP,
      repetitionPenalty: repetitionPenalty ?? 1,
      frequencyPenalty: frequencyPenalty ?? 0,
      seed: doSample ? ((seedRaw as number | undefined | null) ?? randomSeed()) : null,
      maxNewTokens,
      stop,
      details: bool(raw, 'details', true),
      decoderInputDetails,
      topNTokens,
      bestOf,
      returnFullText: bool(raw, 'return_full_text', false),
      truncate,
      ignoreEos: false,
    },
  };
}
