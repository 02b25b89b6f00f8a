/**
 * TGI's request and response shapes, declared once: the routes parse bodies with these schemas, the formatters
 * are typed by them, and the OpenAPI document is generated from them. Field order is check order: the first
 * field that fails names the error, as TGI's router checks them.
 */
import { z } from 'zod';
import { MIN_REPETITION_PENALTY, MIN_TEMPERATURE } from '@switchyard/batching';
import { boolean, integer, modelField, number, optional, servingFields } from '../common/schema';

const unsupported = (name: string, description: string) =>
  z
    .unknown()
    .refine((v) => v === undefined || v === null || v === false, { error: `\`${name}\` is not supported` })
    .optional()
    .meta({ description, enum: [false, null] });

const strictlyPositive = (name: string) => ({ error: `\`${name}\` must be strictly positive` });
const openUnit = (name: string) => ({ error: `\`${name}\` must be > 0.0 and < 1.0` });

export const GenerateParameters = z
  .object(
    {
      watermark: unsupported('watermark', 'Not supported: `true` is refused.'),
      grammar: unsupported('grammar', 'Not supported: any other value is refused.'),
      adapter_id: unsupported('adapter_id', 'Not supported: any other value is refused.'),
      temperature: optional(
        number('temperature')
          .gt(0, strictlyPositive('temperature'))
          .gte(MIN_TEMPERATURE, {
            error: `\`temperature\` must be >= ${MIN_TEMPERATURE} (greedy decoding is \`do_sample: false\`, or \`temperature: 0\` on /v1)`,
          }),
      ).meta({
        description: `Sampling temperature (at least ${MIN_TEMPERATURE}: smaller ones overflow the logits).`,
        default: 1,
      }),
      repetition_penalty: optional(
        number('repetition_penalty')
          .gt(0, strictlyPositive('repetition_penalty'))
          .gte(MIN_REPETITION_PENALTY, { error: `\`repetition_penalty\` must be >= ${MIN_REPETITION_PENALTY}` }),
      ).meta({
        description: 'Multiplicative penalty on tokens of the prompt and of the output; 1 is none.',
        default: 1,
      }),
      frequency_penalty: optional(
        number('frequency_penalty')
          .min(-2, { error: '`frequency_penalty` must be >= -2.0 and <= 2.0' })
          .max(2, { error: '`frequency_penalty` must be >= -2.0 and <= 2.0' }),
      ).meta({ description: 'Lowers a token by this times the count of its uses so far.', default: 0 }),
      top_p: optional(number('top_p').gt(0, openUnit('top_p')).lt(1, openUnit('top_p'))).meta({
        description: 'Nucleus sampling: the smallest set of tokens with this much probability.',
      }),
      typical_p: optional(number('typical_p').gt(0, openUnit('typical_p')).lt(1, openUnit('typical_p'))).meta({
        description: 'Typical decoding mass.',
      }),
      top_k: optional(integer('top_k').gt(0, strictlyPositive('top_k'))).meta({
        description: 'Sample among the k likeliest tokens.',
      }),
      do_sample: optional(boolean('do_sample')).meta({
        description: 'Sample instead of greedy decoding. Implied by `temperature` != 1, `top_k`, `top_p`, `typical_p`.',
        default: false,
      }),
      best_of: optional(integer('best_of')).meta({
        description:
          'Generate this many sequences and return the likeliest (more than 0, at most `--max-best-of`). Needs ' +
          'sampling and no `seed`; not when streaming.',
        default: 1,
        exclusiveMinimum: 0,
      }),
      seed: optional(
        z
          .number({ error: '`seed` must be a non-negative integer' })
          .int({ error: '`seed` must be a non-negative integer' })
          .min(0, { error: '`seed` must be a non-negative integer' })
          .max(Number.MAX_SAFE_INTEGER, { error: '`seed` must be a non-negative integer' }),
      ).meta({ description: 'The sampling seed; random when absent. Not with `best_of` > 1.' }),
      top_n_tokens: optional(integer('top_n_tokens')).meta({
        description: 'Return the n likeliest tokens at each step (at most `--max-top-n-tokens`).',
        default: 0,
        minimum: 0,
      }),
      decoder_input_details: optional(boolean('decoder_input_details')).meta({
        description: 'Return the prompt tokens with their logprobs in `details.prefill`. Not when streaming.',
        default: false,
      }),
      stop: optional(
        z.array(z.string({ error: '`stop` must be a list of strings' }), { error: '`stop` must be a list of strings' }),
      ).meta({ description: 'Stop sequences: generation ends at the first (at most `--max-stop-sequences`).' }),
      truncate: optional(integer('truncate')).meta({
        description: 'Keep only the last `truncate` prompt tokens (more than 0, at most the max input tokens).',
        exclusiveMinimum: 0,
      }),
      max_new_tokens: optional(integer('max_new_tokens').gt(0, strictlyPositive('max_new_tokens'))).meta({
        description:
          'The most tokens to generate; default the rest of the context. Prompt tokens + `max_new_tokens` must be ' +
          '<= the max total tokens.',
      }),
      details: optional(boolean('details')).meta({
        description: 'Return `details`: finish reason, token counts, seed and tokens.',
        default: false,
      }),
      return_full_text: optional(boolean('return_full_text')).meta({
        description: 'Put the prompt before the generated text.',
        default: false,
      }),
    },
    { error: '`parameters` must be an object' },
  )
  .meta({
    id: 'GenerateParameters',
    description:
      "TGI's generation parameters. The model's registry defaults apply under them. `watermark`, `grammar` and " +
      '`adapter_id` are not supported and are refused with 422 when set.',
  });
export type GenerateParameters = z.output<typeof GenerateParameters>;

/** Checked again once the model's registry defaults are under it. */
const parametersField = GenerateParameters.nullish();

const inputs = z
  .string({ error: '`inputs` must be a string' })
  .min(1, { error: '`inputs` cannot be empty' })
  .meta({ description: 'The prompt.' });

export const GenerateRequest = z
  .object(
    {
      inputs,
      parameters: parametersField,
      ...servingFields('`x-served-model`', true),
    },
    { error: 'the request body must be a JSON object with `inputs`' },
  )
  .meta({
    id: 'GenerateRequest',
    examples: [{ inputs: 'What is Deep Learning?', parameters: { max_new_tokens: 20, details: true } }],
  });
export type GenerateRequest = z.output<typeof GenerateRequest>;

export const CompatGenerateRequest = GenerateRequest.extend({
  stream: optional(boolean('stream')).meta({
    description: 'true: answer as `POST /generate_stream` does; false: as `POST /generate`, in an array.',
    default: false,
  }),
}).meta({ id: 'CompatGenerateRequest' });
export type CompatGenerateRequest = z.output<typeof CompatGenerateRequest>;

export const FinishReason = z.enum(['length', 'eos_token', 'stop_sequence']).meta({
  id: 'FinishReason',
  description: '`length`: `max_new_tokens` reached; `eos_token`: the model ended; `stop_sequence`: a stop matched.',
});

export const Token = z
  .object({
    id: z.int().meta({ description: 'The token id.' }),
    text: z.string().meta({ description: 'The token decoded.' }),
    logprob: z.number().meta({ description: 'Its log-probability.' }),
    special: z.boolean().meta({ description: 'Whether it is a special token (eos, bos, ...).' }),
  })
  .meta({ id: 'Token' });
export type Token = z.output<typeof Token>;

export const PrefillToken = z
  .object({
    id: z.int(),
    text: z.string(),
    logprob: z.number().nullable().meta({ description: 'Null for the first prompt token.' }),
  })
  .meta({ id: 'PrefillToken' });

const sequenceDetails = {
  finish_reason: FinishReason,
  generated_tokens: z.int().meta({ description: 'How many tokens were generated.' }),
  seed: z.int().nullable().meta({ description: 'The seed sampling used; null when greedy.' }),
  prefill: z
    .array(PrefillToken)
    .meta({ description: 'The prompt tokens, when `decoder_input_details` is true; empty otherwise.' }),
  tokens: z.array(Token).meta({ description: 'The generated tokens.' }),
  top_tokens: z
    .array(z.array(Token))
    .optional()
    .meta({ description: 'The `top_n_tokens` most likely tokens at each step, when `top_n_tokens` > 0.' }),
};

export const BestOfSequence = z
  .object({ generated_text: z.string(), ...sequenceDetails })
  .meta({ id: 'BestOfSequence' });

export const Details = z
  .object({
    ...sequenceDetails,
    best_of_sequences: z
      .array(BestOfSequence)
      .optional()
      .meta({ description: 'The other sequences, when `best_of` > 1.' }),
  })
  .meta({ id: 'Details' });
export type Details = z.output<typeof Details>;

export const GenerateResponse = z
  .object({
    generated_text: z.string().meta({ description: 'The generated text (after the prompt with `return_full_text`).' }),
    /** When `details` is true. */
    details: Details.optional(),
  })
  .meta({ id: 'GenerateResponse' });
export type GenerateResponse = z.output<typeof GenerateResponse>;

export const StreamDetails = z
  .object({
    finish_reason: FinishReason,
    generated_tokens: z.int(),
    seed: z.int().nullable(),
    input_length: z.int().meta({ description: 'How many prompt tokens.' }),
  })
  .meta({ id: 'StreamDetails' });

export const StreamResponse = z
  .object({
    index: z.int().meta({ description: 'The 1-based index of the token.' }),
    token: Token,
    top_tokens: z.array(Token).meta({ description: 'With `top_n_tokens` > 0.' }),
    generated_text: z.string().nullable().meta({ description: 'The whole text, on the last event only.' }),
    details: StreamDetails.nullable().meta({ description: 'On the last event only, when `details` is true.' }),
  })
  .meta({ id: 'StreamResponse', description: 'One `data:` event of a TGI stream.' });
export type StreamResponse = z.output<typeof StreamResponse>;

export const TokenizeRequest = z
  .object(
    {
      inputs: z.string({ error: '`inputs` must be a string' }).meta({ description: 'The text to tokenize.' }),
      model: modelField(true),
    },
    { error: 'the request body must be a JSON object with `inputs`' },
  )
  .meta({ id: 'TokenizeRequest', examples: [{ inputs: 'Hello world' }] });

export const SimpleToken = z
  .object({
    id: z.int().meta({ description: 'The token id.' }),
    text: z.string().meta({ description: 'The token decoded on its own.' }),
    start: z.int().meta({ description: 'Where it starts in the decoded text.' }),
    stop: z.int().meta({ description: 'Where it ends in the decoded text.' }),
  })
  .meta({ id: 'SimpleToken' });

export const TokenizeResponse = z.array(SimpleToken).meta({ id: 'TokenizeResponse' });
export type TokenizeResponse = z.output<typeof TokenizeResponse>;

export const Info = z
  .object({
    model_id: z.string().meta({ description: 'The default model.' }),
    model_sha: z.null(),
    model_dtype: z.string().meta({ examples: ['float32'] }),
    model_device_type: z.string().meta({ examples: ['cpu'] }),
    model_pipeline_tag: z.string().meta({ examples: ['text-generation'] }),
    max_concurrent_requests: z.int(),
    max_best_of: z.int(),
    max_stop_sequences: z.int(),
    max_input_tokens: z.int().meta({ description: "The default model's limit." }),
    max_total_tokens: z.int().meta({ description: "The default model's limit." }),
    max_top_n_tokens: z.int(),
    validation_workers: z.int(),
    max_client_batch_size: z.int(),
    router: z.literal('switchyard'),
    version: z.string().meta({ description: "Switchyard's version." }),
    sha: z.null(),
    docker_label: z.null(),
  })
  .meta({ id: 'Info' });
export type Info = z.output<typeof Info>;

export const Degraded = z.object({ status: z.literal('degraded'), missing: z.array(z.literal('postgres')) }).meta({
  id: 'Degraded',
  description: 'Ready, but Postgres is unreachable: known keys and models are served from their last good values.',
});

export const Unhealthy = z
  .object({
    error: z.string(),
    error_type: z.literal('unhealthy'),
    missing: z
      .array(z.enum(['redis', 'worker', 'postgres']))
      .meta({ description: 'What is missing: `redis`, `worker` (no live worker has the default model), `postgres`.' }),
  })
  .meta({ id: 'Unhealthy' });
