/**
 * The API's OpenAPI 3.1 document, written by hand: every route the API serves (TGI's, OpenAI's, the service
 * routes, the admin routes and the docs themselves), with request bodies, response bodies, headers, errors and
 * the API key each needs, as the controllers and the auth guard produce them. `GET /api-doc/openapi.json`
 * serves it and `GET /docs` renders it; a spec keeps it in step with the controllers' routes and their
 * `@Public()` and `@RequireScope()` marks.
 */
import { ID_PATTERN } from '@switchyard/protocol';
import { openAiType } from '../common/api-error';
import { MAX_CANDIDATES } from '../generation/route-resolver';

type Json = Record<string, unknown>;

const ref = (kind: 'schemas' | 'responses' | 'headers' | 'parameters', name: string): Json => ({
  $ref: `#/components/${kind}/${name}`,
});
const schema = (name: string): Json => ref('schemas', name);

/** Ollama's `keep_alive`, as a request or a registered model gives it. */
function keepAlive(description: string): Json {
  return {
    type: ['string', 'number', 'null'],
    description:
      `${description} A duration ("30s", "5m", "1h") or a number of seconds, at most 7 days; -1 keeps the model ` +
      'resident through memory pressure from other models, 0 unloads it as soon as it is idle.',
    examples: ['5m', 0, -1],
  };
}

const REQUEST_KEEP_ALIVE =
  "Ollama's `keep_alive`: how long the model stays resident once this request leaves it idle (the last request's " +
  'value wins).';
const json = (body: Json): Json => ({ 'application/json': { schema: body } });

const TGI_TAG = 'Text Generation Inference';
const OPENAI_TAG = 'OpenAI';
const SERVICE_TAG = 'Service';
const ADMIN_TAG = 'Administration';
const DOCS_TAG = 'Documentation';

/** The security scheme: an API key as a bearer token. Its requirement's roles name the scope a route needs. */
const API_KEY = 'ApiKey';
/** The requirement of the inference routes (the document's default) and of the admin routes. */
const NEEDS_INFERENCE: Json[] = [{ [API_KEY]: ['inference'] }];
const NEEDS_ADMIN: Json[] = [{ [API_KEY]: ['admin'] }];
/** The public routes' requirement: none. */
const PUBLIC: Json[] = [];

/** How many models a generation request may try: the one it names and its fallbacks. */

type Family = 'Tgi' | 'OpenAi' | 'Admin';

/** An error response: its status, what causes it, and `[error_type, message]` examples (one per error type). */
interface ErrorSpec {
  status: number;
  description: string;
  examples: [string, string][];
  headers?: Json;
}

const REQUEST_ID_ONLY: Json = { 'x-request-id': ref('headers', 'XRequestId') };

const BAD_REQUEST: ErrorSpec = {
  status: 400,
  description: 'The body is not valid JSON (`bad_request`).',
  examples: [['bad_request', 'the request body is not valid JSON: Unexpected end of JSON input']],
};

const UNAUTHORIZED: ErrorSpec = {
  status: 401,
  description:
    'No API key, an `Authorization` header that is not `Bearer <key>`, or a key that is wrong, revoked or ' +
    'expired (`unauthorized`).',
  examples: [['unauthorized', 'an API key is required: send "Authorization: Bearer <key>"']],
};

const PAYLOAD_TOO_LARGE: ErrorSpec = {
  status: 413,
  description: 'The body is larger than `--payload-limit` (`payload_too_large`).',
  examples: [['payload_too_large', 'the request body is larger than the payload limit']],
};

const INTERNAL: ErrorSpec = {
  status: 500,
  description: 'An unexpected error; the server log has its details (`internal`).',
  examples: [['internal', 'internal error; the server log has the details']],
};

/** The errors of the TGI and OpenAI routes, by name; each family has them as `Tgi<Name>` and `OpenAi<Name>`. */
const ROUTE_ERRORS: Record<string, ErrorSpec> = {
  BadRequest: BAD_REQUEST,
  Unauthorized: UNAUTHORIZED,
  Forbidden: {
    status: 403,
    description: 'The key lacks the `inference` scope (`forbidden`).',
    examples: [['forbidden', 'this key lacks the "inference" scope']],
  },
  ModelForbidden: {
    status: 403,
    description:
      "The key lacks the `inference` scope (`forbidden`), or the key's `allowed_models` excludes the model " +
      '(`model_not_allowed`). A fallback the key may not use is never tried: the error of the last model tried ' +
      'stands.',
    examples: [
      ['model_not_allowed', 'this key may not use model "big"'],
      ['forbidden', 'this key lacks the "inference" scope'],
    ],
  },
  ModelNotFound: {
    status: 404,
    description:
      'The model named is not registered (`model_not_found`); on `/tokenize`, `/info` and `/v1/models/{model}`, ' +
      'not enabled either (a generation route answers 503 for a disabled model, after its fallbacks).',
    examples: [['model_not_found', 'model "nope" is not registered']],
  },
  PayloadTooLarge: PAYLOAD_TOO_LARGE,
  Validation: {
    status: 422,
    description:
      'The request is invalid: a field has the wrong type or range, the prompt is too long, or `fallbacks` is ' +
      `not a list of at most ${MAX_CANDIDATES} model ids (\`validation\`).`,
    examples: [['validation', '`temperature` must be strictly positive']],
  },
  Generation: {
    status: 424,
    description:
      'Generation failed on the worker (`generation`), on the model and on every fallback tried, or after the ' +
      'first token.',
    examples: [['generation', 'generation failed']],
  },
  TooManyRequests: {
    status: 429,
    description:
      'Too many requests are in flight (`--max-concurrent-requests`) (`overloaded`), or the key has spent its ' +
      '`rpm_limit` or `tpm_limit` for this minute (`rate_limited`): a request counts its prompt tokens plus ' +
      '`max_new_tokens` up front, and gets back what it did not generate. `Retry-After` comes with ' +
      '`rate_limited`.',
    examples: [
      ['overloaded', 'Model is overloaded'],
      ['rate_limited', "rate limit exceeded: the key's limit of 60 requests per minute"],
    ],
    headers: { 'retry-after': ref('headers', 'RetryAfter') },
  },
  Internal: INTERNAL,
  Unavailable: {
    status: 503,
    description:
      'No worker can serve the model now, or the model is disabled (`unhealthy`), or it cannot be loaded or ' +
      'placed on a worker (`cannot_place`), or a store the request needs cannot be reached: Redis, or Postgres ' +
      'for a key not seen in the last 5 minutes (`service_unavailable`, with `Retry-After`). With fallbacks, this ' +
      'is why the last one tried failed.',
    examples: [
      ['unhealthy', 'no worker is available: start one, or wait for it to come up'],
      ['cannot_place', 'model big cannot be served: <why its load failed>'],
      ['service_unavailable', 'cannot queue the request: Redis is unreachable; retry shortly'],
    ],
  },
};

/** The errors of the admin routes, in TGI's shape, as `Admin<Name>`. */
const ADMIN_ERRORS: Record<string, ErrorSpec> = {
  BadRequest: BAD_REQUEST,
  Unauthorized: UNAUTHORIZED,
  Forbidden: {
    status: 403,
    description: 'The key lacks the `admin` scope (`forbidden`).',
    examples: [['forbidden', 'this key lacks the "admin" scope']],
  },
  KeyNotFound: {
    status: 404,
    description: 'No active key has this id: there is none, or it is revoked already (`not_found`).',
    examples: [['not_found', 'no active key with id 3f0c2a4e-8d1b-4f6a-9c2e-5b7d1e0a9f34']],
  },
  ModelNotFound: {
    status: 404,
    description: 'No model is registered with this id (`model_not_found`).',
    examples: [['model_not_found', 'model "nope" is not registered']],
  },
  ModelExists: {
    status: 409,
    description: 'A model with this id is registered already (`bad_request`).',
    examples: [['bad_request', 'model "small" is already registered']],
  },
  ModelInUse: {
    status: 409,
    description:
      "The model is the launcher's default model (disable it instead), or another model names it in its " +
      '`fallbacks` (change those first) (`bad_request`).',
    examples: [['bad_request', 'model "small" is a fallback of big: change those first']],
  },
  PayloadTooLarge: PAYLOAD_TOO_LARGE,
  Validation: {
    status: 422,
    description:
      'The request is invalid: an unknown field, or a field with the wrong type or out of range; the message ' +
      'names it (`validation`).',
    examples: [['validation', '`rpm_limit` must be a positive integer up to 1000000000, or null']],
  },
  Internal: INTERNAL,
};

/** A route's error responses, by name, keyed by status. */
function errors(family: Family, names: string[]): Json {
  const catalog = family === 'Admin' ? ADMIN_ERRORS : ROUTE_ERRORS;
  return Object.fromEntries(names.map((n) => [String(catalog[n].status), ref('responses', `${family}${n}`)]));
}

/** An admin 422 with what the route itself checks. */
function adminValidation(description: string): Json {
  return { ...ref('responses', 'AdminValidation'), description: `${description} (\`validation\`).` };
}

const GENERATION_ERRORS = [
  'BadRequest',
  'Unauthorized',
  'ModelForbidden',
  'ModelNotFound',
  'PayloadTooLarge',
  'Validation',
  'Generation',
  'TooManyRequests',
  'Internal',
  'Unavailable',
];

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

function header(description: string, type: 'string' | 'integer' | 'number' = 'string'): Json {
  return { description, schema: { type } };
}

function errorResponse(family: Family, spec: ErrorSpec): Json {
  const body = (errorType: string, message: string): Json =>
    family === 'OpenAi'
      ? { error: { message, type: openAiType(spec.status), param: null, code: errorType } }
      : { error: message, error_type: errorType };
  const media: Json = { schema: schema(family === 'OpenAi' ? 'OpenAiError' : 'TgiError') };
  if (spec.examples.length === 1) media.example = body(...spec.examples[0]);
  else {
    media.examples = Object.fromEntries(
      spec.examples.map(([errorType, message]) => [errorType, { summary: errorType, value: body(errorType, message) }]),
    );
  }
  return {
    description: spec.description,
    headers: { ...REQUEST_ID_ONLY, ...spec.headers },
    content: { 'application/json': media },
  };
}

function errorResponses(family: Family): Json {
  const catalog = family === 'Admin' ? ADMIN_ERRORS : ROUTE_ERRORS;
  return Object.fromEntries(
    Object.entries(catalog).map(([name, spec]) => [`${family}${name}`, errorResponse(family, spec)]),
  );
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
  const fallbacksField = (served: string): Json => ({
    type: ['array', 'null'],
    maxItems: MAX_CANDIDATES,
    items: { type: 'string', pattern: ID_PATTERN.source },
    description:
      'Model ids to try, in order, when the model is disabled, cannot load, is overloaded (its oldest queued ' +
      'request has waited longer than `--fallback-queue-wait` on every worker that holds it) or fails before ' +
      "its first token. They replace the model's registered `fallbacks`; each one's own registered fallbacks " +
      `follow it. At most ${MAX_CANDIDATES} models are tried in all, each once; those the key may not use are ` +
      `skipped. The model that served the request is in ${served}.`,
    examples: [['small', 'tiny']],
  });
  const tgiFallbacks = fallbacksField('`x-served-model`');
  const openAiFallbacks = fallbacksField("`x-served-model` and in the answer's `model`");
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
    logit_bias: {
      type: ['object', 'null'],
      maxProperties: 0,
      description: 'Not supported: anything but an empty object is refused.',
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
      minimum: 0.0001,
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
      model: { type: 'string', description: 'The model that served it: the one asked for, or a fallback.' },
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
          minimum: 0.0001,
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
          minimum: 0.0001,
          default: 1,
          description: 'Sampling temperature (at least 0.0001: smaller ones overflow the logits).',
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
        fallbacks: tgiFallbacks,
        keep_alive: keepAlive(REQUEST_KEEP_ALIVE),
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
        fallbacks: tgiFallbacks,
        keep_alive: keepAlive(REQUEST_KEEP_ALIVE),
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
      description: "The error body of TGI's routes, the service routes and the admin routes.",
      required: ['error', 'error_type'],
      properties: {
        error: { type: 'string', description: 'What went wrong.' },
        error_type: {
          type: 'string',
          enum: [
            'validation',
            'unauthorized',
            'forbidden',
            'model_not_allowed',
            'rate_limited',
            'generation',
            'overloaded',
            'unhealthy',
            'not_found',
            'model_not_found',
            'cannot_place',
            'bad_request',
            'payload_too_large',
            'service_unavailable',
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
            type: {
              type: 'string',
              enum: [
                'invalid_request_error',
                'authentication_error',
                'permission_error',
                'rate_limit_exceeded',
                'server_error',
              ],
            },
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
        fallbacks: openAiFallbacks,
        keep_alive: keepAlive(REQUEST_KEEP_ALIVE),
        messages: {
          type: 'array',
          minItems: 1,
          items: schema('ChatMessage'),
          description: "The conversation, rendered with the model's chat template.",
        },
        ...openAiSampling,
        logprobs: {
          type: ['boolean', 'null'],
          default: false,
          description: "Give each generated token's logprob in the choice's `logprobs.content`.",
        },
        top_logprobs: {
          type: ['integer', 'null'],
          minimum: 0,
          maximum: 20,
          description: 'With `logprobs`: this many likeliest tokens at each step (at most `--max-top-n-tokens`).',
        },
        tools: {
          type: ['array', 'null'],
          description: 'Not supported: refused unless empty or `tool_choice` is `none` (the answer is text).',
        },
        tool_choice: { enum: ['none', 'auto', null], description: 'Not supported beyond `none` and `auto`.' },
        functions: {
          type: ['array', 'null'],
          description: 'Not supported: refused unless empty or `function_call` is `none`.',
        },
        function_call: { enum: ['none', 'auto', null], description: 'Not supported beyond `none` and `auto`.' },
        response_format: {
          type: ['object', 'null'],
          properties: { type: { const: 'text' } },
          description: 'Only `{"type": "text"}`: JSON mode and schemas are refused.',
        },
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
        fallbacks: openAiFallbacks,
        keep_alive: keepAlive(REQUEST_KEEP_ALIVE),
        prompt: {
          oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 1 }],
          description: 'The prompt, or a list of one prompt.',
        },
        echo: { type: ['boolean', 'null'], default: false, description: 'Put the prompt before the completion.' },
        suffix: { type: 'null', description: 'Not supported: any value is refused.' },
        ...openAiSampling,
        logprobs: {
          type: ['integer', 'null'],
          minimum: 0,
          maximum: 5,
          description:
            "Give each generated token's logprob and this many likeliest tokens at each step (at most " +
            '`--max-top-n-tokens`); not with `echo`.',
        },
        best_of: { type: ['integer', 'null'], enum: [1, null], description: 'Only 1 is supported.' },
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
            logprobs: {
              oneOf: [{ type: 'null' }, schema('ChatLogprobs')],
              description: 'With `logprobs: true`: the generated tokens, special ones left out as from the text.',
            },
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
            logprobs: {
              oneOf: [{ type: 'null' }, schema('ChatLogprobs')],
              description: "With `logprobs: true`: the chunk's token.",
            },
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
            logprobs: {
              oneOf: [{ type: 'null' }, schema('CompletionLogprobs')],
              description: 'With `logprobs`: the generated tokens, special ones left out as from the text.',
            },
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
            logprobs: {
              oneOf: [{ type: 'null' }, schema('CompletionLogprobs')],
              description: "With `logprobs`: the chunk's token.",
            },
            finish_reason: finishReason,
          },
        },
      },
      false,
    ),
    ChatLogprobs: {
      type: 'object',
      required: ['content', 'refusal'],
      properties: {
        content: {
          type: 'array',
          items: {
            type: 'object',
            required: ['token', 'logprob', 'bytes', 'top_logprobs'],
            properties: {
              token: { type: 'string' },
              logprob: {
                type: 'number',
                description:
                  'Natural log of its probability as it was drawn: after penalties and temperature, and within ' +
                  "top-k/top-p when they are set (TGI's token logprob).",
              },
              bytes: {
                type: 'array',
                items: { type: 'integer' },
                description:
                  "The token text's UTF-8 bytes. A character split across tokens shows whole on the token that " +
                  'completes it (the tokens before have empty text).',
              },
              top_logprobs: {
                type: 'array',
                description:
                  'The likeliest tokens at this step, likeliest first (`top_logprobs` of them), ranked after penalties ' +
                  "and temperature but before top-k/top-p, as TGI's `top_tokens`.",
                items: {
                  type: 'object',
                  required: ['token', 'logprob', 'bytes'],
                  properties: {
                    token: { type: 'string' },
                    logprob: { type: 'number' },
                    bytes: { type: 'array', items: { type: 'integer' } },
                  },
                },
              },
            },
          },
        },
        refusal: { type: 'null' },
      },
    },
    CompletionLogprobs: {
      type: 'object',
      required: ['tokens', 'token_logprobs', 'top_logprobs', 'text_offset'],
      properties: {
        tokens: { type: 'array', items: { type: 'string' } },
        token_logprobs: { type: 'array', items: { type: 'number' } },
        top_logprobs: {
          type: 'array',
          items: { type: 'object', additionalProperties: { type: 'number' } },
          description: 'Per token, the likeliest tokens at its step as text → logprob.',
        },
        text_offset: {
          type: 'array',
          items: { type: 'integer' },
          description: "Where each token starts in the choice's text (counted from the first generated token).",
        },
      },
    },
    ModelList: {
      type: 'object',
      required: ['object', 'data'],
      properties: {
        object: { const: 'list' },
        data: { type: 'array', items: schema('OpenAiModel') },
      },
    },
    OpenAiModel: {
      type: 'object',
      required: ['id', 'object', 'created', 'owned_by'],
      properties: {
        id: { type: 'string', description: 'The model id, as `model` takes it.' },
        object: { const: 'model' },
        created: { type: 'integer', description: 'When it was registered, in Unix seconds.' },
        owned_by: { const: 'switchyard' },
      },
    },
  };
}

/** The admin routes' bodies: keys, models, workers and usage, with the bounds `admin-input.ts` checks. */
function adminSchemas(): Json {
  const modelId: Json = {
    type: 'string',
    pattern: ID_PATTERN.source,
    description: '1-128 letters, digits or `. _ -`, starting with a letter or digit.',
  };
  const idList = (description: string): Json => ({
    type: ['array', 'null'],
    maxItems: 100,
    uniqueItems: true,
    items: modelId,
    description,
  });
  const limit = (what: string): Json => ({
    type: ['integer', 'null'],
    minimum: 1,
    maximum: 1_000_000_000,
    description: `The most ${what} per minute, counted across every API replica; null for no limit.`,
  });
  const time = (description: string, nullable = true): Json => ({
    type: nullable ? ['string', 'null'] : 'string',
    format: 'date-time',
    description,
  });
  const scopes: Json = {
    type: 'array',
    items: { type: 'string', enum: ['inference', 'admin'] },
    description:
      '`inference`: the generation, tokenize and models routes; `admin`: the /admin routes, and every other ' +
      'route too.',
  };
  const apiKey: Json = {
    id: { type: 'string', format: 'uuid', description: 'The key id, as `DELETE /admin/keys/{id}` takes it.' },
    name: { type: 'string', description: 'A name to tell the key by.' },
    prefix: {
      type: 'string',
      description: 'The first 9 characters of the key (`sy-` and 6 more), to tell keys apart.',
    },
    scopes: { ...scopes, minItems: 1, maxItems: 2, uniqueItems: true },
    allowed_models: {
      type: ['array', 'null'],
      items: { type: 'string' },
      description: 'The model ids the key may use, fallbacks included; null means all.',
    },
    rpm_limit: limit('requests'),
    tpm_limit: limit('tokens (prompt + `max_new_tokens`, reserved when a request starts)'),
    expires_at: time('When the key stops working; null for never.'),
    revoked_at: time('When it was revoked; null while it is active.'),
    last_used_at: time('When it was last used, to within a minute; null if never.'),
    created_at: time('When it was made.', false),
  };
  const apiKeyRequired = Object.keys(apiKey);
  const limits = {
    max_input_tokens: {
      type: ['integer', 'null'],
      minimum: 1,
      description:
        "The most prompt tokens a request may have; less than `max_total_tokens`. Null: the launcher's " +
        '`--max-input-tokens` for its default model, `max_total_tokens` - 1 for the others.',
    },
    max_total_tokens: {
      type: ['integer', 'null'],
      minimum: 1,
      description:
        "The most prompt plus generated tokens, at most the model's context. Null: the launcher's " +
        "`--max-total-tokens` for its default model, the model's context for the others.",
    },
  };
  const defaultParameters: Json = {
    ...schema('GenerateParameters'),
    description:
      "TGI `parameters` that apply under a request's own, checked as TGI checks a request's (at most 10,000 " +
      'characters as JSON).',
  };
  const modelFields = (update: boolean): Json => ({
    path: {
      type: 'string',
      minLength: 1,
      maxLength: 4096,
      description:
        'The directory of an Optimum-style ONNX decoder export, as the API and the workers see it (a relative ' +
        "path is taken from the API's working directory). The API reads it (config, tokenizer, chat template and " +
        "the graph's decoder signature; no ONNX session) before " +
        (update ? 'saving a new one.' : 'saving it.'),
    },
    enabled: {
      type: 'boolean',
      ...(update ? {} : { default: true }),
      description: 'Whether requests may use it; a disabled model falls back, or answers 503.',
    },
    pinned: {
      type: 'boolean',
      ...(update ? {} : { default: false }),
      description:
        'Whether workers keep it once loaded: a pinned model is never evicted, when idle past `--keep-alive` ' +
        'or to make room for another.',
    },
    fallbacks: idList(
      'Registered model ids to try, in order, when this one cannot serve a request; not the model itself, and ' +
        "no loop through the others' lists." +
        (update ? ' Null empties the list.' : ''),
    ),
    ...limits,
    default_parameters: defaultParameters,
    quantize: {
      type: ['string', 'null'],
      enum: ['none', 'q8', 'q4', null],
      description:
        'Weight-only quantization of its MatMuls when a worker loads it: int8 (q8) or int4 (q4). Null leaves it to ' +
        "the workers' `--quantize`. A directory that holds a graph quantized ahead of time is served as it is.",
    },
    keep_alive: keepAlive(
      "How long it stays resident once idle, before workers park it; null: the workers' `--keep-alive`.",
    ),
  });
  const worker: Json = {
    type: 'object',
    required: ['id', 'host', 'pid', 'started_at', 'heartbeat_at', 'draining', 'memory', 'event_loop_max_ms', 'models'],
    properties: {
      id: { type: 'string', description: 'The worker id.' },
      host: { type: 'string', description: 'The host it runs on.' },
      pid: { type: 'integer', description: 'Its process id.' },
      started_at: time('When it started.', false),
      heartbeat_at: time('When it last reported.', false),
      draining: { type: 'boolean', description: 'Whether it is shutting down: it takes no new requests.' },
      memory: {
        type: 'object',
        required: ['used_bytes', 'budget_bytes', 'parked_bytes', 'host_budget_bytes'],
        properties: {
          used_bytes: { type: 'integer', description: 'What its resident models take.' },
          budget_bytes: { type: 'integer', description: 'What they may use (`--device-memory`).' },
          parked_bytes: { type: 'integer', description: 'What its parked models keep.' },
          host_budget_bytes: { type: 'integer', description: 'What they may keep (`--host-memory`; 0: no parking).' },
        },
      },
      event_loop_max_ms: {
        type: ['number', 'null'],
        description: 'The worst event-loop delay since it started, in milliseconds.',
      },
      models: {
        type: 'array',
        items: {
          type: 'object',
          required: ['id', 'state', 'tier', 'bytes', 'pinned', 'active', 'waiting', 'oldest_queued_ms'],
          properties: {
            id: { type: 'string', description: 'The model id.' },
            state: {
              type: 'string',
              enum: ['loading', 'loaded', 'parked'],
              description:
                'Parked models keep their session but take no requests: a request for one brings it back in ' +
                'milliseconds.',
            },
            tier: { type: 'string', enum: ['resident', 'parked'] },
            bytes: { type: 'integer', description: 'The memory it takes.' },
            pinned: { type: 'boolean' },
            active: { type: 'integer', description: 'Sequences generating now.' },
            waiting: { type: 'integer', description: 'Requests waiting in the engine and in the queue.' },
            oldest_queued_ms: { type: 'number', description: 'How long the oldest queued request has waited.' },
            dtype: {
              type: ['string', 'null'],
              enum: ['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'q8f16', null],
              description: "Its weights' precision as served (null while loading).",
            },
            quantize: {
              type: ['string', 'null'],
              enum: ['none', 'q8', 'q4', null],
              description: 'The quantization applied when it loaded (null while loading).',
            },
            attention: {
              type: ['string', 'null'],
              enum: ['fused', 'exported', null],
              description: '`fused`: the attention rewrite is in force; `exported`: the graph runs as exported.',
            },
            kv_dtype: {
              type: ['string', 'null'],
              enum: ['float32', 'float16', null],
              description: 'Its KV cache type.',
            },
          },
        },
      },
    },
  };

  return {
    CreateApiKeyRequest: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 200, description: 'A name to tell the key by (not blank).' },
        scopes: {
          ...scopes,
          minItems: 1,
          maxItems: 2,
          default: ['inference'],
          description: `${String(scopes.description)} Repeats count once.`,
        },
        allowed_models: idList(
          'The model ids the key may use, fallbacks included; absent or null means all. They need not be ' +
            'registered yet.',
        ),
        rpm_limit: limit('requests'),
        tpm_limit: limit('tokens (prompt + `max_new_tokens`, reserved when a request starts)'),
        expires_at: {
          type: ['string', 'null'],
          format: 'date-time',
          maxLength: 64,
          description: 'When the key stops working, as ISO 8601 (`2026-01-31T00:00:00Z`); absent or null for never.',
        },
      },
      examples: [{ name: 'ci', scopes: ['inference'], allowed_models: ['small'], rpm_limit: 60 }],
    },
    ApiKey: {
      type: 'object',
      description: 'A key as listed: never its plaintext, nor its hash.',
      required: apiKeyRequired,
      properties: apiKey,
    },
    CreatedApiKey: {
      type: 'object',
      description: 'A new key: its plaintext, shown this once (only its hash is stored), and its fields.',
      required: ['key', ...apiKeyRequired],
      properties: {
        key: {
          type: 'string',
          pattern: '^sy-[A-Za-z0-9_-]{43}$',
          description: 'The key, to send as `Authorization: Bearer <key>`. It cannot be shown again.',
        },
        ...apiKey,
      },
    },
    CreateModelRequest: {
      type: 'object',
      additionalProperties: false,
      required: ['id', 'path'],
      properties: {
        id: { ...modelId, description: `The model id. ${String(modelId.description)}` },
        ...modelFields(false),
      },
      examples: [{ id: 'small', path: '/models/small', fallbacks: ['tiny'], max_total_tokens: 2048 }],
    },
    UpdateModelRequest: {
      type: 'object',
      additionalProperties: false,
      description: 'The fields to change; absent ones keep their value. A new `path` is loaded and checked first.',
      properties: modelFields(true),
      examples: [{ enabled: false }, { fallbacks: ['tiny'], default_parameters: { temperature: 0.7 } }],
    },
    Model: {
      type: 'object',
      description: 'A model of the registry.',
      required: [
        'id',
        'path',
        'enabled',
        'pinned',
        'fallbacks',
        'max_input_tokens',
        'max_total_tokens',
        'default_parameters',
        'quantize',
        'keep_alive',
        'memory_bytes',
        'created_at',
        'updated_at',
      ],
      properties: {
        id: { type: 'string', description: 'The model id, as requests name it.' },
        path: { type: 'string', description: 'Its directory, absolute.' },
        enabled: { type: 'boolean' },
        pinned: { type: 'boolean' },
        fallbacks: { type: 'array', items: { type: 'string' }, description: 'Model ids to try, in order.' },
        ...limits,
        default_parameters: { type: 'object', description: "TGI `parameters` under a request's own." },
        quantize: {
          type: ['string', 'null'],
          enum: ['none', 'q8', 'q4', null],
          description: "Its quantization at load; null: the workers' `--quantize`.",
        },
        keep_alive: {
          type: ['number', 'null'],
          description: "Its keep-alive in seconds (-1: held resident, 0: unloaded once idle); null: the workers'.",
        },
        memory_bytes: {
          type: ['integer', 'null'],
          description:
            'What a worker budgets for it with the default batch budgets: its weights as resident (quantized when ' +
            '`quantize` says so), its KV cache of 8,192 tokens and the working memory of its largest prefill; ' +
            'estimated when its directory was checked.',
        },
        created_at: time('When it was registered.', false),
        updated_at: time('When it last changed.', false),
      },
    },
    ModelCommand: {
      type: 'object',
      description: 'A load or unload command, sent to the workers; it takes effect when a worker acts on it.',
      required: ['id', 'status'],
      properties: {
        id: { type: 'string', description: 'The model id.' },
        status: { type: 'string', enum: ['load requested', 'unload requested'] },
      },
    },
    Worker: worker,
    UsageReport: {
      type: 'object',
      required: ['from', 'to', 'group_by', 'rows'],
      properties: {
        from: time('The start of the range, included.', false),
        to: time('The end of the range, excluded.', false),
        group_by: { type: 'string', enum: ['model', 'key', 'day'] },
        rows: {
          type: 'array',
          description: 'One row per group, ordered by group.',
          items: {
            type: 'object',
            required: ['group', 'requests', 'prompt_tokens', 'generated_tokens', 'errors'],
            properties: {
              group: {
                type: 'string',
                description:
                  'By `model`: the model that served the request, else the one it named. By `key`: the key id ' +
                  '(empty for the `SWITCHYARD_ADMIN_KEY` key and with `--disable-auth`). By `day`: `YYYY-MM-DD`, in UTC.',
              },
              requests: { type: 'integer', description: 'Generation requests, answered or failed.' },
              prompt_tokens: { type: 'integer' },
              generated_tokens: { type: 'integer' },
              errors: { type: 'integer', description: 'Requests that ended in an error (status 400 or more).' },
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

/** An admin operation: the `admin` scope, TGI's error shape, the shared errors and the route's own. */
function adminOperation(op: {
  summary: string;
  description: string;
  operationId: string;
  parameters?: Json[];
  requestBody?: Json;
  responses: Json;
  errors: string[];
}): Json {
  const { errors: names, responses, parameters = [], ...rest } = op;
  return {
    tags: [ADMIN_TAG],
    ...rest,
    security: NEEDS_ADMIN,
    parameters: [...parameters, ref('parameters', 'XRequestId')],
    // the route's own responses win over the shared ones; status keys list in numeric order whatever the order here
    responses: { ...errors('Admin', ['Unauthorized', 'Forbidden', ...names, 'Internal']), ...responses },
  };
}

/** The admin paths: keys, the model registry, workers and usage. */
function adminPaths(defaultModel: string): Json {
  const ok = (description: string, body: Json, status = '200'): Json => ({
    [status]: { description, headers: REQUEST_ID_ONLY, content: json(body) },
  });
  const noContent = (description: string): Json => ({ '204': { description, headers: REQUEST_ID_ONLY } });
  const modelId = ref('parameters', 'ModelId');
  const badModelId = adminValidation('The id is not a model id');
  return {
    '/admin/keys': {
      post: adminOperation({
        summary: 'Create an API key',
        description:
          'Makes a key (`sy-` and 43 random characters) and answers it once: only its sha256 hash is stored. ' +
          'Without `scopes` it may generate (`inference`) but not administer.',
        operationId: 'createApiKey',
        requestBody: { required: true, content: json(schema('CreateApiKeyRequest')) },
        responses: {
          ...ok('The key, with its plaintext: keep it now.', schema('CreatedApiKey'), '201'),
          '422': adminValidation(
            'An unknown field, a blank or too long `name`, `scopes` other than a non-empty list of `inference` and ' +
              '`admin`, an `allowed_models` entry that is not a model id or repeats, a limit that is not a positive ' +
              'integer, or an `expires_at` that is not a date',
          ),
        },
        errors: ['BadRequest', 'PayloadTooLarge'],
      }),
      get: adminOperation({
        summary: 'List the API keys',
        description: 'Every key, revoked and expired ones included, oldest first: never a plaintext, nor a hash.',
        operationId: 'listApiKeys',
        responses: ok('The keys.', { type: 'array', items: schema('ApiKey') }),
        errors: [],
      }),
    },
    '/admin/keys/{id}': {
      delete: adminOperation({
        summary: 'Revoke an API key',
        description: 'Revokes the key: within a second no API replica takes it. Its row stays, for usage.',
        operationId: 'revokeApiKey',
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            description: 'The key id.',
            schema: { type: 'string', format: 'uuid' },
          },
        ],
        responses: {
          ...noContent('Revoked; the body is empty.'),
          '404': ref('responses', 'AdminKeyNotFound'),
          '422': adminValidation('The id is not a UUID'),
        },
        errors: [],
      }),
    },
    '/admin/models': {
      post: adminOperation({
        summary: 'Register a model',
        description:
          'Adds a model to the registry. Its directory is read first (config, tokenizer, chat template and the ' +
          "graph's decoder signature, with no ONNX session in the API), so a directory that is not a servable " +
          'model is refused; its memory is estimated then. No worker loads it until a request or ' +
          '`POST /admin/models/{id}/load` asks.',
        operationId: 'createModel',
        requestBody: { required: true, content: json(schema('CreateModelRequest')) },
        responses: {
          ...ok('The model, as registered.', schema('Model'), '201'),
          '409': ref('responses', 'AdminModelExists'),
          '422': adminValidation(
            'An unknown or invalid field; a directory that is not a servable model (one message whatever the cause, ' +
              'which goes to the server log); limits over the ' +
              "model's context, or `max_input_tokens` not below `max_total_tokens`; `default_parameters` TGI " +
              'refuses; or `fallbacks` that name the model itself, unregistered models, or would loop',
          ),
        },
        errors: ['BadRequest', 'PayloadTooLarge'],
      }),
      get: adminOperation({
        summary: 'List the models',
        description: 'Every registered model, enabled or not, by id.',
        operationId: 'listRegisteredModels',
        responses: ok('The models.', { type: 'array', items: schema('Model') }),
        errors: [],
      }),
    },
    '/admin/models/{id}': {
      get: adminOperation({
        summary: 'Get a model',
        description: 'One model of the registry.',
        operationId: 'getModel',
        parameters: [modelId],
        responses: {
          ...ok('The model.', schema('Model')),
          '404': ref('responses', 'AdminModelNotFound'),
          '422': badModelId,
        },
        errors: [],
      }),
      patch: adminOperation({
        summary: 'Change a model',
        description:
          'Changes the fields given. A new `path` is loaded and checked as on registration; the limits are checked ' +
          "against the model's context. This API replica sees the change at once, the others within 2 seconds. A " +
          'worker that holds the model keeps what it loaded: unload and load it to apply a new `path`.',
        operationId: 'updateModel',
        parameters: [modelId],
        requestBody: { required: true, content: json(schema('UpdateModelRequest')) },
        responses: {
          ...ok('The model, as changed.', schema('Model')),
          '404': ref('responses', 'AdminModelNotFound'),
          '422': adminValidation(
            'An invalid id; an unknown field (`id` included) or an invalid one; a directory that is not usable; ' +
              "limits over the model's context or out of order; `default_parameters` TGI refuses; or `fallbacks` " +
              'that name the model itself, unregistered models, or would loop',
          ),
        },
        errors: ['BadRequest', 'PayloadTooLarge'],
      }),
      delete: adminOperation({
        summary: 'Remove a model',
        description:
          "Removes the model from the registry and tells the workers to unload it. Not the launcher's default " +
          `model (\`${defaultModel}\`), nor a model another names in its \`fallbacks\`.`,
        operationId: 'deleteModel',
        parameters: [modelId],
        responses: {
          ...noContent('Removed; the body is empty.'),
          '404': ref('responses', 'AdminModelNotFound'),
          '409': ref('responses', 'AdminModelInUse'),
          '422': badModelId,
        },
        errors: [],
      }),
    },
    '/admin/models/{id}/load': {
      post: adminOperation({
        summary: 'Load a model',
        description:
          'Asks the workers to load the model: the live worker with the most free memory loads it, unless one ' +
          'holds it already. The answer does not wait: `GET /admin/workers` shows it loading, then loaded.',
        operationId: 'loadModel',
        parameters: [modelId],
        responses: {
          ...ok('Asked.', schema('ModelCommand'), '202'),
          '404': ref('responses', 'AdminModelNotFound'),
          '422': adminValidation('An invalid id, a disabled model, or one whose directory cannot be read'),
        },
        errors: [],
      }),
    },
    '/admin/models/{id}/unload': {
      post: adminOperation({
        summary: 'Unload a model',
        description: 'Tells every live worker that holds the model to unload it. A later request loads it again.',
        operationId: 'unloadModel',
        parameters: [modelId],
        responses: {
          ...ok('Asked.', schema('ModelCommand'), '202'),
          '404': ref('responses', 'AdminModelNotFound'),
          '422': badModelId,
        },
        errors: [],
      }),
    },
    '/admin/workers': {
      get: adminOperation({
        summary: 'List the workers',
        description: 'The live workers (those whose heartbeat has not expired), by id, with their models and memory.',
        operationId: 'listWorkers',
        responses: ok('The workers.', { type: 'array', items: schema('Worker') }),
        errors: [],
      }),
    },
    '/admin/usage': {
      get: adminOperation({
        summary: 'Usage',
        description:
          'Requests, tokens and errors of the generation routes over `[from, to)`, by model, key or UTC day. ' +
          'Every generation request that passed the key check leaves one record, answered or failed.',
        operationId: 'usage',
        parameters: [ref('parameters', 'UsageFrom'), ref('parameters', 'UsageTo'), ref('parameters', 'UsageGroupBy')],
        responses: {
          ...ok('The usage.', schema('UsageReport')),
          '422': adminValidation(
            'An unknown query parameter, a date that is not ISO 8601, `from` after `to`, or an unknown `group_by`',
          ),
        },
        errors: [],
      }),
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
        `OpenAI's. A request that names no model gets the default one, \`${info.defaultModel}\`, and may name ` +
        '`fallbacks` to try when its model cannot serve it. Every route but `/health`, `/info`, `/metrics` and the ' +
        'documentation needs an API key, sent as `Authorization: Bearer <key>`: with the `inference` scope for ' +
        'the generation routes, `admin` for /admin. Bodies are parsed as JSON whatever their content type, up to ' +
        '`--payload-limit` bytes. Every response carries `x-request-id`. Errors are `{error, error_type}` on TGI, ' +
        'service and admin routes and `{error: {message, type, param, code}}` under /v1.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: NEEDS_INFERENCE,
    tags: [
      { name: TGI_TAG, description: "Hugging Face text-generation-inference's routes." },
      { name: OPENAI_TAG, description: "OpenAI's completions and models routes." },
      { name: SERVICE_TAG, description: 'Model information, health and metrics. No key needed.' },
      {
        name: ADMIN_TAG,
        description: 'API keys, the model registry, workers and usage. A key with the `admin` scope.',
      },
      { name: DOCS_TAG, description: 'This documentation. No key needed.' },
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
            ...errors('Tgi', [
              'BadRequest',
              'Unauthorized',
              'ModelForbidden',
              'ModelNotFound',
              'PayloadTooLarge',
              'Validation',
              'Internal',
              'Unavailable',
            ]),
          },
        },
      },
      '/info': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'The default model and its limits',
          description: "TGI's `/info`: the default model and the limits requests are validated against.",
          operationId: 'info',
          security: PUBLIC,
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': { description: 'The information.', headers: REQUEST_ID_ONLY, content: json(schema('Info')) },
            ...errors('Tgi', ['ModelNotFound', 'Internal', 'Unavailable']),
          },
        },
      },
      '/health': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'Readiness',
          description:
            'Ready once a live worker has the default model loaded and Redis answers; always answers within a second. ' +
            'Postgres being down does not make it fail: known keys and models are served from their last good ' +
            'values meanwhile.',
          operationId: 'health',
          security: PUBLIC,
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': {
              description:
                'Ready; the body is empty, or `{"status": "degraded", "missing": ["postgres"]}` while Postgres is ' +
                'unreachable.',
              headers: REQUEST_ID_ONLY,
            },
            '503': {
              description:
                'Not ready: Redis does not answer, or no live worker has the default model loaded. The TGI error ' +
                'body (`error_type` `unhealthy`) also carries `missing`: what is missing (`redis`, `worker`, ' +
                '`postgres`).',
              headers: REQUEST_ID_ONLY,
              content: json({
                allOf: [
                  schema('TgiError'),
                  { type: 'object', properties: { missing: { type: 'array', items: { type: 'string' } } } },
                ],
              }),
            },
          },
        },
      },
      '/metrics': {
        get: {
          tags: [SERVICE_TAG],
          summary: 'Prometheus metrics',
          description:
            "TGI's request metrics (`tgi_request_*`), Switchyard's own (fallbacks among them) and every live " +
            "worker's batch and pool metrics, in Prometheus' text format.",
          operationId: 'metrics',
          security: PUBLIC,
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': {
              description: 'The metrics.',
              headers: REQUEST_ID_ONLY,
              content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } },
            },
            ...errors('Tgi', ['Internal']),
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
          description: "The enabled models of the registry that the key's `allowed_models` lets it use.",
          operationId: 'listModels',
          parameters: [ref('parameters', 'XRequestId')],
          responses: {
            '200': { description: 'The models.', headers: REQUEST_ID_ONLY, content: json(schema('ModelList')) },
            ...errors('OpenAi', ['Unauthorized', 'Forbidden', 'Internal']),
          },
        },
      },
      '/v1/models/{model}': {
        get: {
          tags: [OPENAI_TAG],
          summary: 'Describe one model',
          description:
            "An enabled model of the registry, as `GET /v1/models` lists it; 403 for a model outside the key's " +
            '`allowed_models`, whether it exists or not.',
          operationId: 'retrieveModel',
          parameters: [
            { name: 'model', in: 'path', required: true, schema: { type: 'string' }, description: 'The model id.' },
            ref('parameters', 'XRequestId'),
          ],
          responses: {
            '200': { description: 'The model.', headers: REQUEST_ID_ONLY, content: json(schema('OpenAiModel')) },
            ...errors('OpenAi', ['Unauthorized', 'ModelForbidden', 'ModelNotFound', 'Internal']),
          },
        },
      },
      ...adminPaths(info.defaultModel),
      '/docs': {
        get: {
          tags: [DOCS_TAG],
          summary: 'This documentation, as a page',
          description: 'The OpenAPI document rendered as one HTML page, with no external resources.',
          operationId: 'docs',
          security: PUBLIC,
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
          security: PUBLIC,
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
      schemas: { ...schemas(info.defaultModel), ...adminSchemas() },
      responses: { ...errorResponses('Tgi'), ...errorResponses('OpenAi'), ...errorResponses('Admin') },
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
        ModelId: {
          name: 'id',
          in: 'path',
          required: true,
          description: 'The model id.',
          schema: { type: 'string', pattern: ID_PATTERN.source, examples: [info.defaultModel] },
        },
        UsageFrom: {
          name: 'from',
          in: 'query',
          required: false,
          description: 'The start of the range, included, as ISO 8601; default a day before `to`.',
          schema: { type: 'string', format: 'date-time', maxLength: 64, examples: ['2026-01-01T00:00:00Z'] },
        },
        UsageTo: {
          name: 'to',
          in: 'query',
          required: false,
          description: 'The end of the range, excluded, as ISO 8601; default now.',
          schema: { type: 'string', format: 'date-time', maxLength: 64, examples: ['2026-01-31T00:00:00Z'] },
        },
        UsageGroupBy: {
          name: 'group_by',
          in: 'query',
          required: false,
          description: 'One row per served model, per key, or per UTC day.',
          schema: { type: 'string', enum: ['model', 'key', 'day'], default: 'model' },
        },
      },
      headers: {
        XRequestId: header("The client's `x-request-id` when it was safe, otherwise the request's own UUID."),
        XServedModel: header('The model that served the request: the one it named, or a fallback.'),
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
        RetryAfter: header(
          'With `rate_limited`: the seconds until the current minute ends and the key may try again.',
          'integer',
        ),
      },
      securitySchemes: {
        [API_KEY]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'sy-...',
          description:
            'An API key, sent as `Authorization: Bearer <key>`. Keys look like `sy-` and 43 more characters: ' +
            '`POST /admin/keys` makes them, and the first start makes an admin key when `SWITCHYARD_ADMIN_KEY` is ' +
            'not set (that variable is a key with every scope too). A requirement names the scope a route needs: ' +
            '`inference` for the generation, tokenize and models routes, `admin` for /admin; an `admin` key may use ' +
            'every route. A key may be limited to `allowed_models` and to `rpm_limit` requests and `tpm_limit` ' +
            'tokens a minute. `--disable-auth` lets every request in, as an admin.',
        },
      },
    },
  };
}
