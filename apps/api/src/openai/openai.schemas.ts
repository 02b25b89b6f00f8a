/**
 * OpenAI's request and response shapes, declared once. The routes parse bodies with these schemas; fields that
 * map onto TGI's parameters (`openai-params.ts`) then meet TGI's checks too. Fields Switchyard does not
 * implement are refused by name, never ignored. Field order is check order.
 */
import { z } from 'zod';
import { boolean, integer, number, optional, servingFields } from '../common/schema';
import { GenerateParameters } from '../tgi/tgi.schemas';

const TGI_FIELDS = GenerateParameters.shape;

const isSet = (v: unknown) => v !== undefined && v !== null;
const isEmpty = (v: unknown) =>
  (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/** A field taken only at its neutral value: anything else is refused by name. */
const neutralOnly = <S extends z.ZodType>(schema: S, neutral: (v: z.output<S>) => boolean, message: string) =>
  optional(schema.refine((v) => neutral(v), { error: message }));

const TextPart = z.object(
  { type: z.literal('text'), text: z.string() },
  { error: 'must be a text part: only text is supported' },
);

export const ChatMessage = z
  .object(
    {
      role: z
        .enum(['system', 'developer', 'user', 'assistant'], {
          error: 'must be system, user, assistant or developer',
        })
        .meta({ description: '`developer` is `system`.' }),
      content: z
        .union([z.string(), z.array(TextPart)], { error: 'must be a string or a list of text parts' })
        .meta({ description: 'Text, or a list of text parts (only text is supported).' }),
    },
    { error: 'must be an object' },
  )
  .meta({ id: 'ChatMessage' });

const messages = z
  .array(ChatMessage, { error: 'must be a non-empty array' })
  .min(1, { error: 'must be a non-empty array' })
  .meta({ description: "The conversation, rendered with the model's chat template." });

/** What both routes take, TGI's own sampling fields among them (@huggingface/inference sends those). */
const sampling = {
  max_tokens: optional(integer('max_tokens').gt(0, { error: '`max_tokens` must be strictly positive' })).meta({
    description: 'The most tokens to generate (TGI `max_new_tokens`).',
  }),
  max_completion_tokens: optional(
    integer('max_completion_tokens').gt(0, { error: '`max_completion_tokens` must be strictly positive' }),
  ).meta({ description: 'Same as `max_tokens`, which it overrides.' }),
  temperature: optional(
    number('temperature')
      .min(0, { error: '`temperature` must be a number from 0 to 2' })
      .max(2, { error: '`temperature` must be a number from 0 to 2' }),
  ).meta({ description: '0 is greedy; absent samples at 1.' }),
  top_p: optional(
    number('top_p').gt(0, { error: '`top_p` must be > 0.0 and <= 1.0' }).max(1, {
      error: '`top_p` must be > 0.0 and <= 1.0',
    }),
  ).meta({ description: 'Nucleus sampling; 1 is off.' }),
  stop: optional(
    z.union([z.string(), z.array(z.string())], { error: '`stop` must be a string or a list of strings' }),
  ).meta({ description: 'Stop sequences: generation ends before any of them (at most `--max-stop-sequences`).' }),
  // forwarded to TGI's parameters as they are: TGI's own field schemas, so both routes check them alike
  seed: TGI_FIELDS.seed,
  frequency_penalty: TGI_FIELDS.frequency_penalty,
  presence_penalty: TGI_FIELDS.presence_penalty,
  n: neutralOnly(integer('n'), (v) => v === 1, '`n` must be 1: several choices are not supported').meta({
    description: 'How many choices: only 1 is supported.',
  }),
  stream: optional(boolean('stream')).meta({ description: 'Stream the answer as server-sent events.', default: false }),
  stream_options: optional(
    z.object(
      {
        include_usage: optional(boolean('stream_options.include_usage')).meta({
          description: 'End the stream with a chunk that has `usage` and no choices; other chunks carry `usage: null`.',
          default: false,
        }),
      },
      { error: '`stream_options` must be an object' },
    ),
  ),
  // TGI's own sampling fields, as @huggingface/inference sends them to /v1/completions
  top_k: TGI_FIELDS.top_k,
  typical_p: TGI_FIELDS.typical_p,
  repetition_penalty: TGI_FIELDS.repetition_penalty,
  truncate: TGI_FIELDS.truncate,
  do_sample: TGI_FIELDS.do_sample,
};

const common = () => servingFields("`x-served-model` and in the answer's `model`");

const toolsRefused = (list: string, choice: string) =>
  [
    optional(z.array(z.unknown(), { error: `\`${list}\` must be a list` })).meta({
      description: `Not supported: refused unless empty or \`${choice}\` is \`none\` (the answer is text).`,
    }),
    optional(z.unknown()).meta({
      description: 'Not supported beyond `none` and `auto`.',
      enum: ['none', 'auto', null],
    }),
  ] as const;

const [tools, toolChoice] = toolsRefused('tools', 'tool_choice');
const [functions, functionCall] = toolsRefused('functions', 'function_call');

export const ChatCompletionRequest = z
  .object(
    {
      ...common(),
      messages,
      tools,
      tool_choice: toolChoice,
      functions,
      function_call: functionCall,
      response_format: optional(z.object({ type: z.string() }).passthrough()).meta({
        description: 'Only `{"type": "text"}`: JSON mode and schemas are refused.',
      }),
      logit_bias: TGI_FIELDS.logit_bias,
      logprobs: optional(boolean('logprobs')).meta({
        description: "Give each generated token's logprob in the choice's `logprobs.content`.",
        default: false,
      }),
      top_logprobs: optional(
        integer('top_logprobs')
          .min(0, { error: '`top_logprobs` must be an integer from 0 to 20' })
          .max(20, { error: '`top_logprobs` must be an integer from 0 to 20' }),
      ).meta({
        description: 'With `logprobs`: this many likeliest tokens at each step (at most `--max-top-n-tokens`).',
      }),
      ...sampling,
      max_tokens: sampling.max_tokens.meta({
        description: 'The most tokens to generate; default the rest of the context.',
      }),
    },
    { error: 'the request body must be a JSON object' },
  )
  .superRefine((body, ctx) => {
    // tools the model is told not to call (`tool_choice: 'none'`) change nothing: the answer is text either way
    for (const [list, choice] of [
      ['tools', 'tool_choice'],
      ['functions', 'function_call'],
    ] as const) {
      const mode = body[choice];
      if (isSet(mode) && mode !== 'none' && mode !== 'auto')
        ctx.addIssue(`\`${choice}\` (tool calls) is not supported`);
      else if (isSet(body[list]) && !isEmpty(body[list]) && mode !== 'none') {
        ctx.addIssue(`\`${list}\` (tool calls) is not supported`);
      }
    }
    const format = body.response_format;
    if (isSet(format) && format.type !== 'text') ctx.addIssue('`response_format` other than text is not supported');
  })
  .meta({
    id: 'ChatCompletionRequest',
    examples: [{ messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 32 }],
  });
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequest>;

export const CompletionRequest = z
  .object(
    {
      ...common(),
      prompt: z
        .union([z.string(), z.array(z.string()).length(1)], {
          error: '`prompt` must be a string or a list of one string',
        })
        .transform((p) => (Array.isArray(p) ? p[0] : p))
        .meta({ description: 'The prompt, or a list of one prompt.' }),
      suffix: neutralOnly(z.unknown(), () => false, '`suffix` is not supported').meta({
        description: 'Not supported: any value is refused.',
      }),
      best_of: neutralOnly(integer('best_of'), (v) => v === 1, '`best_of` other than 1 is not supported').meta({
        description: 'Only 1 is supported.',
      }),
      echo: optional(boolean('echo')).meta({ description: 'Put the prompt before the completion.', default: false }),
      logit_bias: TGI_FIELDS.logit_bias,
      logprobs: optional(
        integer('logprobs')
          .min(0, { error: '`logprobs` must be an integer from 0 to 5' })
          .max(5, { error: '`logprobs` must be an integer from 0 to 5' }),
      ).meta({
        description:
          "Give each generated token's logprob and this many likeliest tokens at each step (at most " +
          '`--max-top-n-tokens`); not with `echo`.',
      }),
      ...sampling,
      max_tokens: sampling.max_tokens.meta({ description: 'The most tokens to generate.', default: 16 }),
    },
    { error: 'the request body must be a JSON object' },
  )
  .superRefine((body, ctx) => {
    if (body.echo === true && isSet(body.logprobs)) ctx.addIssue('`logprobs` with `echo` is not supported');
  })
  .meta({ id: 'CompletionRequest', examples: [{ prompt: 'Once upon a time', max_tokens: 16 }] });
export type CompletionRequest = z.output<typeof CompletionRequest>;

export const Usage = z
  .object({ prompt_tokens: z.int(), completion_tokens: z.int(), total_tokens: z.int() })
  .meta({ id: 'Usage' });

const TopLogprob = z.object({ token: z.string(), logprob: z.number(), bytes: z.array(z.int()) });

export const ChatLogprobs = z
  .object({
    content: z.array(
      z.object({
        token: z.string(),
        logprob: z.number().meta({
          description:
            'Natural log of its probability as it was drawn: after penalties and temperature, and within ' +
            "top-k/top-p when they are set (TGI's token logprob).",
        }),
        bytes: z.array(z.int()).meta({
          description:
            "The token text's UTF-8 bytes. A character split across tokens shows whole on the token that " +
            'completes it (the tokens before have empty text).',
        }),
        top_logprobs: z.array(TopLogprob).meta({
          description:
            'The likeliest tokens at this step, likeliest first (`top_logprobs` of them), ranked after penalties ' +
            "and temperature but before top-k/top-p, as TGI's `top_tokens`.",
        }),
      }),
    ),
    refusal: z.null(),
  })
  .meta({ id: 'ChatLogprobs' });

export const CompletionLogprobs = z
  .object({
    tokens: z.array(z.string()),
    token_logprobs: z.array(z.number()),
    top_logprobs: z
      .array(z.record(z.string(), z.number()))
      .meta({ description: 'Per token, the likeliest tokens at its step as text → logprob.' }),
    text_offset: z
      .array(z.int())
      .meta({ description: "Where each token starts in the choice's text (counted from the first generated token)." }),
  })
  .meta({ id: 'CompletionLogprobs' });

const envelope = <C extends z.ZodType>(object: string, choice: C) => ({
  id: z.string().meta({ description: 'The completion id: `chatcmpl-` or `cmpl-` and the request id.' }),
  object: z.literal(object),
  created: z.int().meta({ description: 'Unix time, in seconds.' }),
  model: z.string().meta({ description: 'The model that served it: the one asked for, or a fallback.' }),
  system_fingerprint: z.string().meta({ description: '`switchyard-` and the version.' }),
  choices: z.array(choice),
});

const finished = z.enum(['stop', 'length']);
const streamUsage = Usage.nullable()
  .optional()
  .meta({ description: 'With `stream_options.include_usage`: null on every chunk but the last, which has it.' });

export const ChatCompletion = z
  .object({
    ...envelope(
      'chat.completion',
      z.object({
        index: z.int(),
        message: z.object({ role: z.literal('assistant'), content: z.string() }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: finished,
      }),
    ),
    usage: Usage,
  })
  .meta({ id: 'ChatCompletion' });

export const ChatCompletionChunk = z
  .object({
    ...envelope(
      'chat.completion.chunk',
      z.object({
        index: z.int(),
        delta: z
          .object({ role: z.literal('assistant').optional(), content: z.string().optional() })
          .meta({ description: 'The first chunk has the role; the last, with the finish reason, is empty.' }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: finished.nullable(),
      }),
    ),
    usage: streamUsage,
  })
  .meta({ id: 'ChatCompletionChunk', description: 'One choice; none on the usage chunk.' });

const completionChoice = (finish: z.ZodType) =>
  z.object({ index: z.int(), text: z.string(), logprobs: CompletionLogprobs.nullable(), finish_reason: finish });

export const Completion = z
  .object({ ...envelope('text_completion', completionChoice(finished)), usage: Usage })
  .meta({ id: 'Completion' });

export const CompletionChunk = z
  .object({ ...envelope('text_completion', completionChoice(finished.nullable())), usage: streamUsage })
  .meta({ id: 'CompletionChunk', description: 'One choice; none on the usage chunk.' });

export const OpenAiModel = z
  .object({
    id: z.string().meta({ description: 'The model id, as `model` takes it.' }),
    object: z.literal('model'),
    created: z.int().meta({ description: 'When it was registered, in Unix seconds.' }),
    owned_by: z.literal('switchyard'),
  })
  .meta({ id: 'OpenAiModel' });
export type OpenAiModel = z.output<typeof OpenAiModel>;

export const ModelList = z.object({ object: z.literal('list'), data: z.array(OpenAiModel) }).meta({ id: 'ModelList' });
export type ModelList = z.output<typeof ModelList>;
