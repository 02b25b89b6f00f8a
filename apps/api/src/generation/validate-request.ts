/**
 * A TGI request made ready for the engine: `parameters` parsed by their schema (types and ranges, TGI's
 * messages), then the checks that need the model (its limits, the prompt's token count) and the request (a
 * stream), then TGI's derived values (sampling implied by the warpers, a seed whenever sampling).
 */
import { GenerationParameters, randomSeed, ValidationError, ValidationLimits } from '@switchyard/batching';
import { grammarPattern } from '../common/grammar';
import { issueMessage } from '../common/schema';
import { GenerateParameters } from '../tgi/tgi.schemas';

export interface ValidatedRequest {
  inputIds: number[];
  parameters: GenerationParameters;
}

export interface ValidateOptions {
  /** Streaming routes refuse `best_of` > 1 and `decoder_input_details`. */
  stream: boolean;
}

function parseParameters(raw: unknown): GenerateParameters {
  const parsed = GenerateParameters.nullish().safeParse(raw);
  if (!parsed.success) throw new ValidationError(issueMessage(parsed.error));
  return parsed.data ?? {};
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
  const p = parseParameters(rawParameters);

  const { temperature, top_k: topK = null, top_p: topP = null, typical_p: typicalP = null } = p;
  const hasWarpers = (temperature != null && temperature !== 1) || topK != null || topP != null || typicalP != null;
  const doSample = p.do_sample === true || hasWarpers;

  const bestOf = p.best_of ?? 1;
  if (bestOf <= 0 || bestOf > limits.maxBestOf) {
    throw new ValidationError(`\`best_of\` must be > 0 and <= ${limits.maxBestOf}. Given: ${bestOf}`);
  }
  if (bestOf > 1) {
    if (options.stream) throw new ValidationError('`best_of` != 1 is not supported when streaming tokens');
    if (!doSample) throw new ValidationError('you must use sampling when `best_of` is > 1');
    if (p.seed != null) throw new ValidationError('`seed` must not be set when `best_of` > 1');
  }
  const topNTokens = p.top_n_tokens ?? 0;
  if (topNTokens < 0 || topNTokens > limits.maxTopNTokens) {
    throw new ValidationError(`\`top_n_tokens\` must be >= 0 and <= ${limits.maxTopNTokens}. Given: ${topNTokens}`);
  }
  const decoderInputDetails = p.decoder_input_details ?? false;
  if (decoderInputDetails && options.stream) {
    throw new ValidationError('`decoder_input_details` == true is not supported when streaming tokens');
  }
  const stops = p.stop ?? [];
  if (stops.length > limits.maxStopSequences) {
    throw new ValidationError(
      `\`stop\` supports up to ${limits.maxStopSequences} stop sequences. Given: ${stops.length}`,
    );
  }
  const truncate = p.truncate ?? null;
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
  const maxNewTokens = p.max_new_tokens ?? Math.max(1, limits.maxTotalTokens - inputLength);
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
      repetitionPenalty: p.repetition_penalty ?? 1,
      frequencyPenalty: p.frequency_penalty ?? 0,
      presencePenalty: p.presence_penalty ?? 0,
      logitBias: Object.entries(p.logit_bias ?? {}).map(([id, bias]): [number, number] => [Number(id), bias]),
      seed: doSample ? (p.seed ?? randomSeed()) : null,
      maxNewTokens,
      stop: stops.filter((s) => s.length > 0),
      details: p.details ?? true,
      decoderInputDetails,
      topNTokens,
      bestOf,
      returnFullText: p.return_full_text ?? false,
      truncate,
      ignoreEos: false,
      grammar: p.grammar ? grammarPattern(p.grammar) : null,
    },
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
