/**
 * The API's OpenAPI 3.1 document, written by hand: every route the API serves (TGI's, OpenAI's, the service
 * routes and the docs themselves), with request bodies, response bodies, headers and errors as the controllers
 * produce them. `GET /api-doc/openapi.json` serves it and `GET /docs` renders it; a spec keeps it in step with
 * the controllers' routes.
 */

type Json = Record<string, unknown>;

const ref = (kind: 'schemas' | 'responses' | 'headers' | 'parameters', name: string): Json => ({
  $ref: `#/components/${kind}/${name}`,
});
const schema = (name: string): Json => ref('schemas', name);
const json = (body: Json): Json => ({ 'application/json': { schema: body } });

const TGI_TAG = 'Text Generation Inference';
const OPENAI_TAG = 'OpenAI';
const SERVICE_TAG = 'Service';
const DOCS_TAG = 'Documentation';

/** The error responses of a route family, by status. */
function errors(family: 'Tgi' | 'OpenAi', statuses: number[]): Json {
  const names: Record<number, string> = {
    400: 'BadRequest',
    404: 'ModelNotFound',
    413: 'PayloadTooLarge',
    422: 'Validation',
    424: 'Generation',
    429: 'Overloaded',
    500: 'Internal',
    503: 'Unavailable',
  };
  return Object.fromEntries(statuses.map((s) => [String(s), ref('responses', `${family}${names[s]}`)]));
}

const GENERATION_ERRORS = [400, 404, 413, 422, 424, 429, 500, 503];

/** The headers of a JSON generation response: TGI's timings, the served model and the request id. */
const TIMING_HEADERS: Json = {
  'x-request-id': ref('headers', 'XRequestId'),
  'x-served-model': ref('headers', 'XServedModel'),
  'x-compute-type': ref('headers', 'XComputeType'),
  'x-compute-time': ref('headers', 'XComputeTime'),
  'x-compute-characters': ref('headers', 'XComputeCharacters'),
  'x-total-time': ref('headers', 'XTotalTime'),
  'x-validation-time': ref('headers', 'XValidationTime'),
  'x-queue-time': ref('headers', 'XQueueTime'),
  'x-inference-time': ref('headers', 'XInferenceTime'),
  'x-time-per-token': ref('headers', 'XTimePerToken'),
  'x-prompt-tokens': ref('headers', 'XPromptTokens'),
  'x-generated-tokens': ref('headers', 'XGeneratedTokens'),
  'x-attempts': ref('headers', 'XAttempts'),
};

/** The headers of an SSE response: they go out with the first token, before any timing is known. */
const STREAM_HEADERS: Json = {
  'x-request-id': ref('headers', 'XRequestId'),
  'x-served-model': ref('headers', 'XServedModel'),
  'x-compute-type': ref('headers', 'XComputeType'),
};

const REQUEST_ID_ONLY: Json = { 'x-request-id': ref('headers', 'XRequestId') };

function header(description: string, type: 'string' | 'integer' | 'number' = 'string'): Json {
  return { description, schema: { type } };
}

/** OpenAI's error `type` for a status, as the exception filter picks it. */
function openAiType(status: number): string {
  if (status === 429) return 'rate_limit_exceeded';
  return status >= 500 || status === 424 ? 'server_error' : 'invalid_request_error';
}

function errorResponse(
  family: 'Tgi' | 'OpenAi',
  status: number,
  description: string,
  errorType: string,
  message: string,
): Json {
  const example =
    family === 'Tgi'
      ? { error: message, error_type: errorType }
      : { error: { message, type: openAiType(status), param: null, code: errorType } };
  return {
    description,
    headers: REQUEST_ID_ONLY,
    content: { 'application/json': { schema: schema(family === 'Tgi' ? 'TgiError' : 'OpenAiError'), example } },
  };
}

function errorResponses(family: 'Tgi' | 'OpenAi'): Json {
  return {
    [`${family}BadRequest`]: errorResponse(
      family,
      400,
      'The body is not valid JSON (`bad_request`).',
      'bad_request',
      'the request body is not valid JSON: Unexpected end of JSON input',
    ),
    [`${family}ModelNotFound`]: errorResponse(
      family,
      404,
      'The model named is not registered or not enabled (`model_not_found`).',
      'model_not_found',
      'model "nope" is not registered or not enabled',
    ),
    [`${family}PayloadTooLarge`]: errorResponse(
      family,
      413,
      'The body is larger than `--payload-limit` (`payload_too_large`).',
      'payload_too_large',
      'the request body is larger than the payload limit',
    ),
    [`${family}Validation`]: errorResponse(
      family,
      422,
      'The request is invalid: a field has the wrong type or range, or the prompt is too long (`validation`).',
      'validation',
      '`temperature` must be strictly positive',
    ),
    [`${family}Generation`]: errorResponse(
      family,
      424,
      'Generation failed on the worker (`generation`).',
      'generation',
      'generation failed',
    ),
    [`${family}Overloaded`]: errorResponse(
      family,
      429,
      'Too many requests are in flight (`--max-concurrent-requests`) (`overloaded`).',
      'overloaded',
      'Model is overloaded',
    ),
    [`${family}Internal`]: errorResponse(
      family,
      500,
      'An unexpected error; the server log has its details (`internal`).',
      'internal',
      'internal error; the server log has the details',
    ),
    [`${family}Unavailable`]: errorResponse(
      family,
      503,
      'No worker can serve the model now (`unhealthy`), or the model cannot be placed on a worker (`cannot_place`).',
      'unhealthy',
      'no worker is running',
    ),
  };
}

function schemas(defaultModel: string): Json {
  const modelField: Json = {
    type: 'string',
    description:
      `The model to use: a registered, enabled model id. Absent, empty, \`tgi\` or a URL: the default model ` +
      `(\`${defaultModel}\`).`,
    examples: [defaultModel],
  };
  const tgiModelField: Json = {
    ...modelField,
    description: `${String(modelField.description)} The \`x-model\` header can name it too.`,
  };
  const token: Json = {
    type: 'object',
    required: ['id', 'text', 'logprob', 'special'],
    properties: {
      id: { type: 'integer', description: 'The token id.' },
      text: { type: 'string', description: 'The token decoded.' },
      logprob: { type: 'number', description: 'Its log-probability.' },
      special: { type: 'boolean', description: 'Whether it is a special token (eos, bos, ...).' },
    },
  };
  const sequenceDetails = (first: Json, required: string[], bestOf: boolean): Json => ({
    type: 'object',
    required: [...required, 'finish_reason', 'generated_tokens', 'seed', 'prefill', 'tokens'],
    properties: {
      ...first,
      finish_reason: schema('FinishReason'),
      generated_tokens: { type: 'integer', description: 'How many tokens were generated.' },
      seed: { type: ['integer', 'null'], description: 'The seed sampling used; null when greedy.' },
      prefill: {
        type: 'array',
        items: schema('PrefillToken'),
        description: 'The prompt tokens, when `decoder_input_details` is true; empty otherwise.',
      },
      tokens: { type: 'array', items: schema('Token'), description: 'The generated tokens.' },
      top_tokens: {
        type: 'array',
        items: { type: 'array', items: schema('Token') },
        description: 'The `top_n_tokens` most likely tokens at each step, when `top_n_tokens` > 0.',
      },
      ...(bestOf
        ? {
            best_of_sequences: {
              type: 'array',
              items: schema('BestOfSequence'),
              description: 'The other sequences, when `best_of` > 1.',
            },
          }
        : {}),
    },
  });
  const openAiSampling: Json = {
    max_tokens: {
      type: ['integer', 'null'],
      exclusiveMinimum: 0,
      description: 'The most tokens to generate (TGI `max_new_tokens`).',
    },
    max_completion_tokens: {
      type: ['integer', 'null'],
      exclusiveMinimum: 0,
      description: 'Same as `max_tokens`, which it overrides.',
    },
    temperature: {
      type: ['number', 'null'],
      minimum: 0,
      maximum: 2,
      description: '0 is greedy; absent samples at 1.',
    },
    top_p: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: 1, description: 'Nucleus sampling; 1 is off.' },
    stop: {
      oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }, { type: 'null' }],
      description: 'Stop sequences: generation ends before any of them (at most `--max-stop-sequences`).',
    },
    seed: { type: ['integer', 'null'], minimum: 0, description: 'The sampling seed, for reproducible output.' },
    frequency_penalty: {
      type: ['number', 'null'],
      minimum: -2,
      maximum: 2,
      default: 0,
      description: 'Lowers a token by this times the count of its uses so far.',
    },
    presence_penalty: {
      type: ['number', 'null'],
      enum: [0, null],
      description: 'Not supported: any value but 0 is refused.',
    },
    n: { type: ['integer', 'null'], enum: [1, null], description: 'How many choices: only 1 is supported.' },
    stream: { type: ['boolean', 'null'], default: false, description: 'Stream the answer as server-sent events.' },
    stream_options: {
      type: ['object', 'null'],
      properties: {
        include_usage: {
          type: ['boolean', 'null'],
          default: false,
          description: 'End the stream with a chunk that has `usage` and no choices; other chunks carry `usage: null`.',
        },
      },
    },
    top_k: { type: ['integer', 'null'], exclusiveMinimum: 0, description: 'TGI: sample among the k likeliest.' },
    typical_p: {
      type: ['number', 'null'],
      exclusiveMinimum: 0,
      exclusiveMaximum: 1,
      description: 'TGI: typical decoding mass.',
    },
    repetition_penalty: {
      type: ['number', 'null'],
      exclusiveMinimum: 0,
      description: 'TGI: multiplicative penalty on tokens already seen; 1 is none.',
    },
    truncate: {
      type: ['integer', 'null'],
      exclusiveMinimum: 0,
      description: 'TGI: keep only the last `truncate` prompt tokens.',
    },
    do_sample: {
      type: ['boolean', 'null'],
      description: 'TGI: false is greedy (and takes no `temperature` other than 0).',
    },
  };
  const usage: Json = {
    type: 'object',
    required: ['prompt_tokens', 'completion_tokens', 'total_tokens'],
    properties: {
      prompt_tokens: { type: 'integer' },
      completion_tokens: { type: 'integer' },
      total_tokens: { type: 'integer' },
    },
  };
  const completionEnvelope = (object: string, choices: Json, usageRequired: boolean): Json => ({
    type: 'object',
    required: [
      'id',
      'object',
      'created',
      'model',
      'system_fingerprint',
      'choices',
      ...(usageRequired ? ['usage'] : []),
    ],
    properties: {
      id: { type: 'string', description: 'The completion id: `chatcmpl-` or `cmpl-` and the request id.' },
      object: { const: object },
      created: { type: 'integer', description: 'Unix time, in seconds.' },
      model: { type: 'string', description: 'The model that served it.' },
      system_fingerprint: { type: 'string', description: '`switchyard-` and the version.' },
      choices,
      usage: usageRequired
        ? schema('Usage')
        : {
            oneOf: [schema('Usage'), { type: 'null' }],
            description: 'With `stream_options.include_usage`: null on every chunk but the last, which has it.',
          },
    },
  });
  const finishReason: Json = { type: ['string', 'null'], enum: ['stop', 'length', null] };

  return {
    GenerateParameters: {
      type: 'object',
      description:
        "TGI's generation parameters. The model's registry defaults apply under them. `watermark`, `grammar` and " +
        '`adapter_id` are not supported and are refused with 422 when set.',
      properties: {
        best_of: {
          type: ['integer', 'null'],
          exclusiveMinimum: 0,
          default: 1,
          description:
            'Generate this many sequences and return the likeliest (at most `--max-best-of`). Needs sampling and ' +
            'no `seed`; not when streaming.',
        },
        decoder_input_details: {
          type: ['boolean', 'null'],
          default: false,
          description: 'Return the prompt tokens with their logprobs in `details.prefill`. Not when streaming.',
        },
        details: {
          type: ['boolean', 'null'],
          default: false,
          description: 'Return `details`: finish reason, token counts, seed and tokens.',
        },
        do_sample: {
          type: ['boolean', 'null'],
          default: false,
          description:
            'Sample instead of greedy decoding. Implied by `temperature` != 1, `top_k`, `top_p`, `typical_p`.',
        },
        frequency_penalty: {
          type: ['number', 'null'],
          minimum: -2,
          maximum: 2,
          default: 0,
          description: 'Lowers a token by this times the count of its uses so far.',
        },
        max_new_tokens: {
          type: ['integer', 'null'],
          exclusiveMinimum: 0,
          description:
            'The most tokens to generate; default the rest of the context. Prompt tokens + `max_new_tokens` ' +
            'must be <= the max total tokens.',
        },
        repetition_penalty: {
          type: ['number', 'null'],
          exclusiveMinimum: 0,
          default: 1,
          description: 'Multiplicative penalty on tokens of the prompt and of the output; 1 is none.',
        },
        return_full_text: {
          type: ['boolean', 'null'],
          default: false,
          description: 'Put the prompt before the generated text.',
        },
        seed: {
          type: ['integer', 'null'],
          minimum: 0,
          description: 'The sampling seed; random when absent. Not with `best_of` > 1.',
        },
        stop: {
          type: ['array', 'null'],
          items: { type: 'string' },
          description: 'Stop sequences: generation ends at the first (at most `--max-stop-sequences`).',
        },
        temperature: {
          type: ['number', 'null'],
          exclusiveMinimum: 0,
          default: 1,
          description: 'Sampling temperature.',
        },
        top_k: { type: ['integer', 'null'], exclusiveMinimum: 0, description: 'Sample among the k likeliest tokens.' },
        top_n_tokens: {
          type: ['integer', 'null'],
          minimum: 0,
          default: 0,
          description: 'Return the n likeliest tokens at each step (at most `--max-top-n-tokens`).',
        },
        top_p: {
          type: ['number', 'null'],
          exclusiveMinimum: 0,
          exclusiveMaximum: 1,
          description: 'Nucleus sampling: the smallest set of tokens with this much probability.',
        },
        truncate: {
          type: ['integer', 'null'],
          exclusiveMinimum: 0,
          description: 'Keep only the last `truncate` prompt tokens (at most the max input tokens).',
        },
        typical_p: {
          type: ['number', 'null'],
          exclusiveMinimum: 0,
          exclusiveMaximum: 1,
          description: 'Typical decoding mass.',
        },
        watermark: { enum: [false, null], description: 'Not supported: `true` is refused.' },
        grammar: { enum: [false, null], description: 'Not supported: any other value is refused.' },
        adapter_id: { enum: [false, null], description: 'Not supported: any other value is refused.' },
      },
    },
    GenerateRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        inputs: { type: 'string', minLength: 1, description: 'The prompt.' },
        parameters: schema('GenerateParameters'),
        model: tgiModelField,
      },
      examples: [{ inputs: 'What is Deep Learning?', parameters: { max_new_tokens: 20, details: true } }],
    },
    CompatGenerateRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        inputs: { type: 'string', minLength: 1, description: 'The prompt.' },
        parameters: schema('GenerateParameters'),
        model: tgiModelField,
        stream: {
          type: 'boolean',
          default: false,
          description: 'true: answer as `POST /generate_stream` does; false: as `POST /generate`, in an array.',
        },
      },
    },
    FinishReason: {
      type: 'string',
      enum: ['length', 'eos_token', 'stop_sequence'],
      description: '`length`: `max_new_tokens` reached; `eos_token`: the model ended; `stop_sequence`: a stop matched.',
    },
    Token: token,
    PrefillToken: {
      type: 'object',
      required: ['id', 'text', 'logprob'],
      properties: {
        id: { type: 'integer' },
        text: { type: 'string' },
        logprob: { type: ['number', 'null'], description: 'Null for the first prompt token.' },
      },
    },
    BestOfSequence: sequenceDetails({ generated_text: { type: 'string' } }, ['generated_text'], false),
    Details: sequenceDetails({}, [], true),
    GenerateResponse: {
      type: 'object',
      required: ['generated_text'],
      properties: {
        generated_text: {
          type: 'string',
          description: 'The generated text (after the prompt with `return_full_text`).',
        },
        details: { ...schema('Details'), description: 'When `details` is true.' },
      },
    },
    StreamDetails: {
      type: 'object',
      required: ['finish_reason', 'generated_tokens', 'seed', 'input_length'],
      properties: {
        finish_reason: schema('FinishReason'),
        generated_tokens: { type: 'integer' },
        seed: { type: ['integer', 'null'] },
        input_length: { type: 'integer', description: 'How many prompt tokens.' },
      },
    },
    StreamResponse: {
      type: 'object',
      description: 'One `data:` event of a TGI stream.',
      required: ['index', 'token', 'top_tokens', 'generated_text', 'details'],
      properties: {
        index: { type: 'integer', description: 'The 1-based index of the token.' },
        token: schema('Token'),
        top_tokens: { type: 'array', items: schema('Token'), description: 'With `top_n_tokens` > 0.' },
        generated_text: { type: ['string', 'null'], description: 'The whole text, on the last event only.' },
        details: {
          oneOf: [schema('StreamDetails'), { type: 'null' }],
          description: 'On the last event only, when `details` is true.',
        },
      },
    },
    TokenizeRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        inputs: { type: 'string', description: 'The text to tokenize.' },
        model: tgiModelField,
      },
      examples: [{ inputs: 'Hello world' }],
    },
    SimpleToken: {
      type: 'object',
      required: ['id', 'text', 'start', 'stop'],
      properties: {
        id: { type: 'integer', description: 'The token id.' },
        text: { type: 'string', description: 'The token decoded on its own.' },
        start: { type: 'integer', description: 'Where it starts in the decoded text.' },
        stop: { type: 'integer', description: 'Where it ends in the decoded text.' },
      },
    },
    Info: {
      type: 'object',
      required: [
        'model_id',
        'model_dtype',
        'model_device_type',
        'max_concurrent_requests',
        'max_best_of',
        'max_stop_sequences',
        'max_input_tokens',
        'max_total_tokens',
        'max_top_n_tokens',
        'router',
        'version',
      ],
      properties: {
        model_id: { type: 'string', description: 'The default model.' },
        model_sha: { type: 'null' },
        model_dtype: { type: 'string', examples: ['float32'] },
        model_device_type: { type: 'string', examples: ['cpu'] },
        model_pipeline_tag: { type: 'string', examples: ['text-generation'] },
        max_concurrent_requests: { type: 'integer' },
        max_best_of: { type: 'integer' },
        max_stop_sequences: { type: 'integer' },
        max_input_tokens: { type: 'integer', description: "The default model's limit." },
        max_total_tokens: { type: 'integer', description: "The default model's limit." },
        max_top_n_tokens: { type: 'integer' },
        validation_workers: { type: 'integer' },
        max_client_batch_size: { type: 'integer' },
        router: { const: 'switchyard' },
        version: { type: 'string', description: "Switchyard's version." },
        sha: { type: 'null' },
        docker_label: { type: 'null' },
      },
    },
    TgiError: {
      type: 'object',
      required: ['error', 'error_type'],
      properties: {
        error: { type: 'string', description: 'What went wrong.' },
        error_type: {
          type: 'string',
          enum: [
            'validation',
            'generation',
            'overloaded',
            'unhealthy',
            'not_found',
            'model_not_found',
            'cannot_place',
            'bad_request',
            'payload_too_large',
            'internal',
          ],
        },
      },
    },
    OpenAiError: {
      type: 'object',
      required: ['error'],
      properties: {
        error: {
          type: 'object',
          required: ['message', 'type', 'param', 'code'],
          properties: {
            message: { type: 'string', description: 'What went wrong.' },
            type: { type: 'string', enum: ['invalid_request_error', 'rate_limit_exceeded', 'server_error'] },
            param: { type: 'null' },
            code: { type: 'string', description: "TGI's `error_type`." },
          },
        },
      },
    },
    ChatMessage: {
      type: 'object',
      required: ['role', 'content'],
      properties: {
        role: {
          type: 'string',
          enum: ['system', 'developer', 'user', 'assistant'],
          description: '`developer` is `system`.',
        },
        content: {
          oneOf: [
            { type: 'string' },
            {
              type: 'array',
              items: {
                type: 'object',
                required: ['type', 'text'],
                properties: { type: { const: 'text' }, text: { type: 'string' } },
              },
            },
          ],
          description: 'Text, or a list of text parts (only text is supported).',
        },
      },
    },
    ChatCompletionRequest: {
      type: 'object',
      required: ['messages'],
      properties: {
        model: modelField,
        messages: {
          type: 'array',
          minItems: 1,
          items: schema('ChatMessage'),
          description: "The conversation, rendered with the model's chat template.",
        },
        ...openAiSampling,
        max_tokens: {
          ...(openAiSampling.max_tokens as Json),
          description: 'The most tokens to generate; default the rest of the context.',
        },
      },
      examples: [{ model: defaultModel, messages: [{ role: 'user', content: 'Say hello.' }], max_tokens: 32 }],
    },
    CompletionRequest: {
      type: 'object',
      required: ['prompt'],
      properties: {
        model: modelField,
        prompt: {
          oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }],
          description: 'The prompt, or a list of one prompt.',
        },
        echo: { type: ['boolean', 'null'], default: false, description: 'Put the prompt before the completion.' },
        suffix: { type: 'null', description: 'Not supported: any value is refused.' },
        ...openAiSampling,
        max_tokens: { ...(openAiSampling.max_tokens as Json), default: 16 },
      },
      examples: [{ model: defaultModel, prompt: 'Once upon a time', max_tokens: 16 }],
    },
    Usage: usage,
    ChatCompletion: completionEnvelope(
      'chat.completion',
      {
        type: 'array',
        items: {
          type: 'object',
          required: ['index', 'message', 'logprobs', 'finish_reason'],
          properties: {
            index: { type: 'integer' },
            message: {
              type: 'object',
              required: ['role', 'content'],
              properties: { role: { const: 'assistant' }, content: { type: 'string' } },
            },
            logprobs: { type: 'null' },
            finish_reason: { type: 'string', enum: ['stop', 'length'] },
          },
        },
      },
      true,
    ),
    ChatCompletionChunk: completionEnvelope(
      'chat.completion.chunk',
      {
        type: 'array',
        description: 'One choice; none on the usage chunk.',
        items: {
          type: 'object',
          required: ['index', 'delta', 'logprobs', 'finish_reason'],
          properties: {
            index: { type: 'integer' },
            delta: {
              type: 'object',
              description: 'The first chunk has the role; the last, with the finish reason, is empty.',
              properties: { role: { const: 'assistant' }, content: { type: 'string' } },
            },
            logprobs: { type: 'null' },
            finish_reason: finishReason,
          },
        },
      },
      false,
    ),
    Completion: completionEnvelope(
      'text_completion',
      {
        type: 'array',
        items: {
          type: 'object',
          required: ['index', 'text', 'logprobs', 'finish_reason'],
          properties: {
            index: { type: 'integer' },
            text: { type: 'string' },
            logprobs: { type: 'null' },
            finish_reason: { type: 'string', enum: ['stop', 'length'] },
          },
        },
      },
      true,
    ),
    CompletionChunk: completionEnvelope(
      'text_completion',
      {
        type: 'array',
        description: 'One choice; none on the usage chunk.',
        items: {
          type: 'object',
          required: ['index', 'text', 'logprobs', 'finish_reason'],
          properties: {
            index: { type: 'integer' },
            text: { type: 'string' },
            logprobs: { type: 'null' },
            finish_reason: finishReason,
          },
        },
      },
      false,
    ),
    ModelList: {
      type: 'object',
      required: ['object', 'data'],
      properties: {
        object: { const: 'list' },
        data: {
          type: 'array',
          items: {
            type: 'object',
            required: ['id', 'object', 'created', 'owned_by'],
            properties: {
              id: { type: 'string', description: 'The model id, as `model` takes it.' },
              object: { const: 'model' },
              created: { type: 'integer', description: 'When it was registered, in Unix seconds.' },
              owned_by: { const: 'switchyard' },
            },
          },
        },
      },
    },
  };
}

const TGI_STREAM_NOTE =
  'Server-sent events, `data:{...}` each: one per token, the last with `generated_text` (and `details`). ' +
  'An error before the first token is a plain HTTP error; after it, the stream ends with a ' +
  '`data:{"error","error_type"}` event.';

const OPENAI_STREAM_NOTE =
  'With `stream: true`, server-sent events `data: {...}` of chunks, then `data: [DONE]`. An error after the ' +
  'first chunk ends the stream with a `data: {"error":{...}}` event.';

function tgiGenerate(summary: string, description: string, operationId: string, stream: boolean): Json {
  return {
    tags: [TGI_TAG],
    summary,
    description,
    operationId,
    parameters: [ref('parameters', 'XModel'), ref('parameters', 'XRequestId')],
    requestBody: { required: true, content: json(schema('GenerateRequest')) },
    responses: {
      '200': stream
        ? {
            description: TGI_STREAM_NOTE,
            headers: STREAM_HEADERS,
            content: { 'text/event-stream': { schema: schema('StreamResponse') } },
          }
        : {
            description: 'The generated text, and its details when asked for.',
            headers: TIMING_HEADERS,
            content: json(schema('GenerateResponse')),
          },
      ...errors('Tgi', GENERATION_ERRORS),
    },
  };
}

/** The OpenAPI 3.1 document of the API. `defaultModel` is the model a request gets when it names none. */
export function buildOpenApiDocument(info: { version: string; defaultModel: string }): Json {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: info.version,
      summary: 'Multi-model LLM serving with the text-generation-inference and OpenAI APIs.',
      description:
        "Switchyard serves the models of its registry over Hugging Face text-generation-inference's HTTP API and " +
        `OpenAI's. A request that names no model gets the default one, \`${info.defaultModel}\`. Bodies are ` +
        'parsed as JSON whatever their content type, up to `--payload-limit` bytes. Every response carries ' +
        '`x-request-id`. Errors are `{error, error_type}` on TGI routes and `{error: {message, type, param, code}}` ' +
        'under /v1.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    tags: [
      { name: TGI_TAG, description: "Hugging Face text-generation-inference's routes." },
      { name: OPENAI_TAG, description: "OpenAI's completions and models routes." },
      { name: SERVICE_TAG, description: 'Model information, health and metrics.' },
      { name: DOCS_TAG, description: 'This documentation.' },
    ],
    paths: {
      '/': {
        post: {
          tags: [TGI_TAG],
          summary: 'Generate, TGI compat route',
          description:
            "TGI's compat route: with `stream: false` (the default) it answers as `POST /generate`, in a one-item " +
            'array; with `stream: true`, as `POST /generate_stream`.',
          operationId: 'compatGenerate',
          parameters: [ref('parameters', 'XModel'), ref('parameters', 'XRequestId')],
          requestBody: { required: true, content: json(schema('CompatGenerateRequest')) },
          responses: {
            '200': {
              description: `An array of one generated text, or, with \`stream: true\`, a stream (whose headers carry no timings). ${TGI_STREAM_NOTE}`,
              headers: TIMING_HEADERS,
              content: {
                'application/json': {
                  schema: { type: 'array', minItems: 1, maxItems: 1, items: schema('GenerateResponse') },
                },
                'text/event-stream': { schema: schema('StreamResponse') },
              },
            },
            ...errors('Tgi', GENERATION_ERRORS),
          },
        },
      },
      '/generate': {
        post: tgiGenerate(
          'Generate text',
          'Generates from `inputs` with TGI `parameters` and answers once the generation ends.',
          'generate',
          false,
        ),
      },
      '/generate_stream': {
        post: tgiGenerate(
          'Generate text, token by token',
          'Generates as `POST /generate` does and streams the tokens as server-sent events. `best_of` > 1 and ' +
            '`decoder_input_details` are refused.',
          'generateStream',
          true,
        ),
      },
      '/tokenize': {
        post: {
          tags: [TGI_TAG],
          summary: 'Tokenize a prompt',
          description:
            'The tokens of `inputs` as the model sees them, with their text and offsets in the decoded text.',
          operationId: 'tokenize',
          parameters: [ref('parameters', 'XModel'), ref('parameters', 'XRequestId')],
          requestBody: { required: true, content: json(schema('TokenizeRequest')) },
          responses: {
            '200': {
              description: 'The tokens.',
              headers: REQUEST_ID_ONLY,
              content: json({ type: 'array', items: schema('SimpleToken') }),
            },
            ...errors('Tgi', [400, 404, 413, 422, 500, 503]),
          },
        },
      },
      '/info': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'The default model and its limits',
          description: "TGI's `/info`: the default model and the limits requests are validated against.",
          operationId: 'info',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': { description: 'The information.', headers: REQUEST_ID_ONLY, content: json(schema('Info')) },
            ...errors('Tgi', [404, 500, 503]),
          },
        },
      },
      '/health': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'Readiness',
          description: 'Ready once a live worker has the default model loaded.',
          operationId: 'health',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': { description: 'Ready; the body is empty.', headers: REQUEST_ID_ONLY },
            '503': {
              description: 'Not ready: no worker is running, or none has the default model loaded yet.',
              headers: REQUEST_ID_ONLY,
              content: json(schema('TgiError')),
            },
          },
        },
      },
      '/metrics': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'Prometheus metrics',
          description:
            "TGI's request metrics (`tgi_request_*`) and every live worker's batch and pool metrics, in Prometheus' " +
            'text format.',
          operationId: 'metrics',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': {
              description: 'The metrics.',
              headers: REQUEST_ID_ONLY,
              content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } },
            },
            ...errors('Tgi', [500]),
          },
        },
      },
      '/v1/chat/completions': {
        post: {
          tags: [OPENAI_TAG],
          summary: 'Chat completion',
          description:
            "OpenAI's chat completions: `messages` go through the model's chat template (422 if it has none). " +
            OPENAI_STREAM_NOTE,
          operationId: 'createChatCompletion',
          parameters: [ref('parameters', 'XRequestId')],
          requestBody: { required: true, content: json(schema('ChatCompletionRequest')) },
          responses: {
            '200': {
              description: 'The completion, or a stream of chunks (whose headers carry no timings).',
              headers: TIMING_HEADERS,
              content: {
                'application/json': { schema: schema('ChatCompletion') },
                'text/event-stream': { schema: schema('ChatCompletionChunk') },
              },
            },
            ...errors('OpenAi', GENERATION_ERRORS),
          },
        },
      },
      '/v1/completions': {
        post: {
          tags: [OPENAI_TAG],
          summary: 'Text completion',
          description:
            "OpenAI's (legacy) completions: the prompt as it is. `max_tokens` defaults to 16. " + OPENAI_STREAM_NOTE,
          operationId: 'createCompletion',
          parameters: [ref('parameters', 'XRequestId')],
          requestBody: { required: true, content: json(schema('CompletionRequest')) },
          responses: {
            '200': {
              description: 'The completion, or a stream of chunks (whose headers carry no timings).',
              headers: TIMING_HEADERS,
              content: {
                'application/json': { schema: schema('Completion') },
                'text/event-stream': { schema: schema('CompletionChunk') },
              },
            },
            ...errors('OpenAi', GENERATION_ERRORS),
          },
        },
      },
      '/v1/models': {
        get: {
          tags: [OPENAI_TAG],
          summary: 'List the models',
          description: 'The enabled models of the registry.',
          operationId: 'listModels',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': { description: 'The models.', headers: REQUEST_ID_ONLY, content: json(schema('ModelList')) },
            ...errors('OpenAi', [500]),
          },
        },
      },
      '/docs': {
        get: {
          tags: [DOCS_TAG],
          summary: 'This documentation, as a page',
          description: 'The OpenAPI document rendered as one HTML page, with no external resources.',
          operationId: 'docs',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': {
              description: 'The page.',
              headers: REQUEST_ID_ONLY,
              content: { 'text/html; charset=utf-8': { schema: { type: 'string' } } },
            },
          },
        },
      },
      '/api-doc/openapi.json': {
        get: {
          tags: [DOCS_TAG],
          summary: 'The OpenAPI document',
          description: "This API's OpenAPI 3.1 document, at TGI's path for it.",
          operationId: 'openApi',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': {
              description: 'The document.',
              headers: REQUEST_ID_ONLY,
              content: json({ type: 'object', description: 'An OpenAPI 3.1 document.' }),
            },
          },
        },
      },
    },
    components: {
      schemas: schemas(info.defaultModel),
      responses: { ...errorResponses('Tgi'), ...errorResponses('OpenAi') },
      parameters: {
        XModel: {
          name: 'x-model',
          in: 'header',
          required: false,
          description: 'The model to use, when the body has no `model`.',
          schema: { type: 'string', examples: [info.defaultModel] },
        },
        XRequestId: {
          name: 'x-request-id',
          in: 'header',
          required: false,
          description: 'Your own request id (1-128 of `A-Za-z0-9_.:-`), sent back in `x-request-id`.',
          schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
        },
      },
      headers: {
        XRequestId: header("The client's `x-request-id` when it was safe, otherwise the request's own UUID."),
        XServedModel: header('The model that served the request.'),
        XComputeType: header('Where it ran: `cpu`.'),
        XComputeTime: header('The total time, in seconds.', 'number'),
        XComputeCharacters: header('The length of the prompt, in characters.', 'integer'),
        XTotalTime: header('The total time, in milliseconds.', 'integer'),
        XValidationTime: header('The validation time, in milliseconds.', 'integer'),
        XQueueTime: header('The time waiting for a worker and a batch slot, in milliseconds.', 'integer'),
        XInferenceTime: header('The time generating, in milliseconds.', 'integer'),
        XTimePerToken: header('The inference time per generated token, in milliseconds.', 'integer'),
        XPromptTokens: header('How many prompt tokens.', 'integer'),
        XGeneratedTokens: header('How many generated tokens.', 'integer'),
        XAttempts: header('How many times the request ran (more than 1 after a worker failed).', 'integer'),
      },
    },
  };
}
