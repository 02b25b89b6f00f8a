/**
 * OpenAI's request and response shapes, declared once. The routes parse bodies with these schemas; fields that
 * map onto TGI's parameters (`openai-params.ts`) then meet TGI's checks too. Bodies are strict: a field a route
 * does not declare is refused by name, never ignored, and so is a declared one at a value Switchyard does not
 * implement; the only fields taken without effect are the documented `IGNORED` ones. Field order is check order.
 */
import { z } from 'zod';
import { boolean, integer, number, optional, servingFields, strictBody } from '../common/schema';
import { Grammar } from '../common/grammar';
import { GenerateParameters } from '../tgi/tgi.schemas';

const TGI_FIELDS = GenerateParameters.shape;

const isSet = (v: unknown) => v !== undefined && v !== null;
const isEmpty = (v: unknown) =>
  (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

/** A field taken only at its neutral value: anything else is refused by name. */
const neutralOnly = <S extends z.ZodType>(schema: S, neutral: (v: z.output<S>) => boolean, message: string) =>
  optional(schema.refine((v) => neutral(v), { error: message }));

/** How many choices (`n`, and `best_of` on /v1/completions) one request may ask for: each is its own generation. */
export const MAX_CHOICES = 8;

/**
 * OpenAI fields taken and documented as having no effect here: `user` and `metadata` label a request for OpenAI's
 * own dashboards, `store` keeps it there for distillation, `service_tier` picks OpenAI's capacity. Any other field
 * a route does not declare is refused by name, never dropped.
 */
const IGNORED = {
  user: optional(z.string({ error: '`user` must be a string' })).meta({
    description: "OpenAI's end-user label: taken, and has no effect here.",
  }),
  metadata: optional(z.record(z.string(), z.string(), { error: '`metadata` must be an object of strings' })).meta({
    description: "OpenAI's dashboard tags: taken, and have no effect here.",
  }),
  store: optional(boolean('store')).meta({
    description: 'OpenAI keeps the completion for its own tools: taken, and has no effect here (nothing is stored).',
  }),
  service_tier: optional(z.string({ error: '`service_tier` must be a string' })).meta({
    description: "OpenAI's capacity tier: taken, and has no effect here (every request is served alike).",
  }),
};

/** A request body: a strict object, so that an undeclared field is a 422 naming it. */
const body = <S extends z.ZodRawShape>(shape: S) => strictBody(shape, 'the request body must be a JSON object');

const TextPart = z.object(
  { type: z.literal('text'), text: z.string() },
  { error: 'must be a text part: only text is supported' },
);

export const ToolCall = z
  .object({
    id: z.string({ error: 'must be a string' }).meta({ description: '`call_` and 24 random characters.' }),
    type: z.literal('function', { error: 'must be "function"' }),
    function: z.object({
      name: z.string({ error: 'must be a string' }),
      arguments: z.string({ error: 'must be a string' }).meta({ description: 'The arguments, as JSON text.' }),
    }),
  })
  .meta({ id: 'ToolCall' });
export type ToolCall = z.output<typeof ToolCall>;

const content = z
  .union([z.string(), z.array(TextPart)], { error: 'must be a string or a list of text parts' })
  .transform((c) => (typeof c === 'string' ? c : c.map((part) => part.text).join('')));

export const ChatMessage = z
  .object(
    {
      role: z
        .enum(['system', 'developer', 'user', 'assistant', 'tool'], {
          error: 'must be system, user, assistant, tool or developer',
        })
        .meta({ description: '`developer` is `system`.' }),
      content: content.nullish().meta({
        description:
          'Text, or a list of text parts (only text is supported). Null or absent only on an assistant message ' +
          'with `tool_calls`.',
      }),
      tool_calls: optional(z.array(ToolCall, { error: 'must be a list of tool calls' })).meta({
        description: "An assistant message's tool calls, as an answer gave them: sent back with the tools' results.",
      }),
      tool_call_id: optional(z.string({ error: 'must be a string' })).meta({
        description: 'A `tool` message: the id of the call whose result `content` is.',
      }),
    },
    { error: 'must be an object' },
  )
  .superRefine((m, ctx) => {
    if (m.content == null && !(m.role === 'assistant' && m.tool_calls?.length)) {
      ctx.addIssue({
        code: 'custom',
        path: ['content'],
        message: 'must be text (only an assistant message with tool calls may leave it out)',
      });
    }
    if (m.tool_calls != null && m.role !== 'assistant') {
      ctx.addIssue({ code: 'custom', path: ['tool_calls'], message: 'is only for assistant messages' });
    }
    if (m.role === 'tool' && m.tool_call_id == null) {
      ctx.addIssue({ code: 'custom', path: ['tool_call_id'], message: 'must be given on a tool message' });
    }
  })
  .meta({ id: 'ChatMessage' });
export type ChatMessage = z.output<typeof ChatMessage>;

const messages = z
  .array(ChatMessage, { error: 'must be a non-empty array' })
  .min(1, { error: 'must be a non-empty array' })
  .meta({ description: "The conversation, rendered with the model's chat template." });

const choiceCount = (name: string, description: string) =>
  optional(
    integer(name)
      .min(1, { error: `\`${name}\` must be an integer from 1 to ${MAX_CHOICES}` })
      .max(MAX_CHOICES, { error: `\`${name}\` must be an integer from 1 to ${MAX_CHOICES}` }),
  ).meta({ description, default: 1 });

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
  seed: TGI_FIELDS.seed.meta({
    description: 'The sampling seed; random when absent. With `n` > 1, choice i samples with `seed` + i.',
  }),
  frequency_penalty: TGI_FIELDS.frequency_penalty,
  presence_penalty: TGI_FIELDS.presence_penalty,
  n: choiceCount(
    'n',
    `How many choices, at most ${MAX_CHOICES}: independent samples, each its own generation (with \`temperature: 0\` ` +
      "they are the same). `usage` counts the prompt once and every choice's tokens.",
  ),
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
  ...IGNORED,
};

const common = () => servingFields("`x-served-model` and in the answer's `model`");

/** OpenAI's deprecated `functions` API: refused unless empty or off (use `tools`). */
const legacyFunctions = {
  functions: optional(z.array(z.unknown(), { error: '`functions` must be a list' })).meta({
    description: 'Deprecated by OpenAI for `tools`: refused unless empty or `function_call` is `none`.',
  }),
  function_call: optional(z.unknown()).meta({
    description: 'Deprecated by OpenAI for `tool_choice`: only `none` and `auto` (with no `functions`).',
    enum: ['none', 'auto', null],
  }),
};

const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export const FunctionTool = z
  .object(
    {
      type: z.literal('function', { error: '`tools[].type` must be "function": only function tools are supported' }),
      function: z.object(
        {
          name: z
            .string({ error: '`tools[].function.name` must be 1 to 64 letters, digits, `_` or `-`' })
            .regex(TOOL_NAME, { error: '`tools[].function.name` must be 1 to 64 letters, digits, `_` or `-`' }),
          description: optional(z.string({ error: '`tools[].function.description` must be a string' })),
          parameters: optional(
            z.record(z.string(), z.unknown(), { error: '`tools[].function.parameters` must be a JSON Schema object' }),
          ).meta({
            description:
              'The arguments as a JSON Schema (the subset `response_format` takes); absent: no arguments (`{}`).',
          }),
          strict: optional(boolean('tools[].function.strict')).meta({
            description: 'Taken: the arguments always follow `parameters`, strict or not.',
          }),
        },
        { error: '`tools[].function` must be an object' },
      ),
    },
    { error: '`tools[]` must be a function tool' },
  )
  .meta({ id: 'FunctionTool' });
export type FunctionTool = z.output<typeof FunctionTool>;

const NamedToolChoice = z.object(
  {
    type: z.literal('function'),
    function: z.object({ name: z.string() }),
  },
  { error: '`tool_choice` must be none, auto, required or {"type": "function", "function": {"name": ...}}' },
);

const ResponseFormat = z
  .discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('text') }),
      z.object({ type: z.literal('json_object') }),
      z.object({
        type: z.literal('json_schema'),
        json_schema: z.object(
          {
            name: z.string({ error: '`response_format.json_schema.name` must be a string' }),
            description: optional(z.string()),
            schema: optional(
              z.record(z.string(), z.unknown(), {
                error: '`response_format.json_schema.schema` must be a JSON Schema object',
              }),
            ),
            strict: optional(boolean('response_format.json_schema.strict')),
          },
          { error: '`response_format.json_schema` must be an object with a `name` and a `schema`' },
        ),
      }),
    ],
    { error: '`response_format` must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", ...}' },
  )
  .meta({
    description:
      "The answer's form, enforced while decoding: `json_object` is any JSON object, `json_schema` valid JSON under " +
      '`json_schema.schema` (a supported subset; strict or not, the output follows it). JSON comes compact, its ' +
      "keys in the schema's `properties` order.",
  });

export const ChatCompletionRequest = body({
  ...common(),
  messages,
  tools: optional(
    z.array(FunctionTool, { error: '`tools` must be a list of function tools' }).max(128, {
      error: '`tools` may list at most 128 tools',
    }),
  ).meta({
    description:
      'Function tools the model may call. Calls are constrained to compact JSON: `{"name":..., "arguments":{...}}` ' +
      "with arguments valid under the tool's `parameters`. A chat template that reads `tools` gets them; otherwise " +
      'they are listed in a system preamble.',
  }),
  tool_choice: optional(
    z.union([z.enum(['none', 'auto', 'required']), NamedToolChoice], {
      error: '`tool_choice` must be none, auto, required or {"type": "function", "function": {"name": ...}}',
    }),
  ).meta({
    description:
      '`auto` (the default with tools): a call or text; `required`: one call or more; a named function: a call to ' +
      'it; `none`: text, and the tools are not shown to the model.',
  }),
  parallel_tool_calls: optional(boolean('parallel_tool_calls')).meta({
    description:
      'Whether an answer may call several tools (1 to 4 calls): the model then answers with a JSON array of calls.',
    default: true,
  }),
  ...legacyFunctions,
  response_format: optional(ResponseFormat),
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
})
  .superRefine((body, ctx) => {
    const mode = body.function_call;
    if (isSet(mode) && mode !== 'none' && mode !== 'auto') {
      ctx.addIssue('`function_call` (deprecated functions) is not supported: use `tools` and `tool_choice`');
    } else if (isSet(body.functions) && !isEmpty(body.functions) && mode !== 'none') {
      ctx.addIssue('`functions` (deprecated) is not supported: use `tools`');
    }
    const choice = body.tool_choice;
    const tools = body.tools ?? [];
    if (tools.length === 0 && (choice === 'required' || typeof choice === 'object') && isSet(choice)) {
      ctx.addIssue('`tool_choice` needs `tools`: there is no tool to call');
    }
    if (typeof choice === 'object' && isSet(choice) && !tools.some((t) => t.function.name === choice.function.name)) {
      ctx.addIssue(`\`tool_choice\` names the function \`${choice.function.name}\`, which is not in \`tools\``);
    }
    const names = new Set<string>();
    for (const tool of tools) {
      if (names.has(tool.function.name)) ctx.addIssue(`\`tools\` names \`${tool.function.name}\` twice`);
      names.add(tool.function.name);
    }
    const format = body.response_format?.type ?? 'text';
    if (format !== 'text' && tools.length > 0 && choice !== 'none') {
      ctx.addIssue('`response_format` other than text cannot be combined with tool calls (or set `tool_choice: none`)');
    }
  })
  .meta({
    id: 'ChatCompletionRequest',
    examples: [{ messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 32 }],
  });
export type ChatCompletionRequest = z.output<typeof ChatCompletionRequest>;

export const CompletionRequest = body({
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
  best_of: choiceCount(
    'best_of',
    'Generate this many (at least `n`, at most `--max-best-of`) and answer with the `n` of highest total logprob. ' +
      'Not with `stream`.',
  ),
  echo: optional(boolean('echo')).meta({
    description:
      'Put the prompt before the completion. With `logprobs`, the prompt tokens come first in them, the first ' +
      'with a null logprob (not with `stream`).',
    default: false,
  }),
  logit_bias: TGI_FIELDS.logit_bias,
  logprobs: optional(
    integer('logprobs')
      .min(0, { error: '`logprobs` must be an integer from 0 to 5' })
      .max(5, { error: '`logprobs` must be an integer from 0 to 5' }),
  ).meta({
    description:
      "Give each generated token's logprob and this many likeliest tokens at each step (at most " +
      '`--max-top-n-tokens`).',
  }),
  grammar: optional(Grammar).meta({
    description:
      "TGI's grammar (as @huggingface/inference's textGeneration sends it): the completion follows a JSON Schema " +
      '(compact JSON) or matches a regex in full.',
  }),
  ...sampling,
  max_tokens: sampling.max_tokens.meta({ description: 'The most tokens to generate.', default: 16 }),
})
  .superRefine((body, ctx) => {
    const n = body.n ?? 1;
    if (isSet(body.best_of) && body.best_of < n) ctx.addIssue('`best_of` must be at least `n`');
    if (body.stream === true && (body.best_of ?? 1) > 1) ctx.addIssue('`best_of` is not supported with `stream`');
    if (body.stream === true && body.echo === true && isSet(body.logprobs)) {
      ctx.addIssue('`echo` with `logprobs` is not supported with `stream`');
    }
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
    token_logprobs: z
      .array(z.number().nullable())
      .meta({ description: "With `echo`, the prompt's tokens come first: the very first has no logprob (null)." }),
    top_logprobs: z.array(z.record(z.string(), z.number()).nullable()).meta({
      description:
        "Per token, the likeliest tokens at its step as text → logprob. With `echo`, a prompt token's has only " +
        'itself (null for the first).',
    }),
    text_offset: z.array(z.int()).meta({ description: "Where each token starts in the choice's text." }),
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
const chatFinished = z
  .enum(['stop', 'length', 'tool_calls'])
  .meta({ description: '`tool_calls` when the answer is tool calls.' });
const streamUsage = Usage.nullable()
  .optional()
  .meta({ description: 'With `stream_options.include_usage`: null on every chunk but the last, which has it.' });

export const ChatCompletion = z
  .object({
    ...envelope(
      'chat.completion',
      z.object({
        index: z.int(),
        message: z.object({
          role: z.literal('assistant'),
          content: z.string().nullable().meta({ description: 'The text; null when the answer is tool calls.' }),
          tool_calls: z.array(ToolCall).optional(),
        }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: chatFinished,
      }),
    ),
    usage: Usage,
  })
  .meta({ id: 'ChatCompletion' });

const ToolCallDelta = z
  .object({
    index: z.int().meta({ description: "The call's place in the answer's calls." }),
    id: z.string().optional(),
    type: z.literal('function').optional(),
    function: z.object({ name: z.string().optional(), arguments: z.string() }),
  })
  .meta({
    id: 'ToolCallDelta',
    description:
      "A call's first delta has its id, type, name and empty arguments; the next ones, the arguments' next text.",
  });

export const ChatCompletionChunk = z
  .object({
    ...envelope(
      'chat.completion.chunk',
      z.object({
        index: z.int(),
        delta: z
          .object({
            role: z.literal('assistant').optional(),
            content: z.string().optional(),
            tool_calls: z.array(ToolCallDelta).optional(),
          })
          .meta({
            description: "A choice's first chunk has the role; its last, with the finish reason, is empty.",
          }),
        logprobs: ChatLogprobs.nullable(),
        finish_reason: chatFinished.nullable(),
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
