/**
 * Every error a route can answer, as the OpenAPI document lists it: the status, what causes it, and an example
 * per `error_type`, in each family's body shape (TGI's `{error, error_type}`, OpenAI's `{error: {...}}`). The
 * bodies are written by `error.filter.ts`; their schemas are here.
 */
import { z } from 'zod';
import { ERROR_TYPES, openAiType } from '../common/api-error';
import { MAX_CANDIDATES } from '../common/schema';

export const TgiError = z
  .object({
    error: z.string().meta({ description: 'What went wrong.' }),
    error_type: z.enum(ERROR_TYPES),
  })
  .meta({ description: "The error body of TGI's routes, the service routes and the admin routes." });

export const OpenAiError = z
  .object({
    error: z.object({
      message: z.string().meta({ description: 'What went wrong.' }),
      type: z.enum([
        'invalid_request_error',
        'authentication_error',
        'permission_error',
        'rate_limit_exceeded',
        'server_error',
      ]),
      param: z.null(),
      code: z.string().meta({ description: "TGI's `error_type`." }),
    }),
  })
  .meta({ description: 'The error body of the /v1 routes.' });

export type Family = 'Tgi' | 'OpenAi' | 'Admin';

/** The two error bodies as JSON Schema, for the document's components (responses there are plain objects). */
export function errorSchemas(): Record<'TgiError' | 'OpenAiError', Record<string, unknown>> {
  const plain = (schema: z.ZodType) => {
    const { $schema: _, id: __, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12' });
    return rest;
  };
  return { TgiError: plain(TgiError), OpenAiError: plain(OpenAiError) };
}

/** An error response: its status, what causes it, and `[error_type, message]` examples (one per error type). */
export interface ErrorSpec {
  status: number;
  description: string;
  examples: [string, string][];
  /** Response headers beyond `x-request-id`, by component name. */
  headers?: Record<string, string>;
}

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

/** The errors of the TGI, service and OpenAI routes, by name. */
const ROUTE_ERRORS = {
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
  NotFound: {
    status: 404,
    description: 'There is no such thing here (`not_found`).',
    examples: [['not_found', 'no such documentation asset: nope.js']],
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
    headers: { 'retry-after': 'RetryAfter' },
  },
  Internal: INTERNAL,
  Unavailable: {
    status: 503,
    description:
      'No worker came up within --place-timeout, or the model is disabled (`unhealthy`), or it cannot be loaded or ' +
      'placed on a worker (`cannot_place`), or a store the request needs cannot be reached: Redis, or Postgres ' +
      'for a key not seen in the last 5 minutes (`service_unavailable`, with `Retry-After`). With fallbacks, this ' +
      'is why the last one tried failed.',
    examples: [
      ['unhealthy', 'no worker is available: none came up within --place-timeout (10000 ms); start one'],
      ['cannot_place', 'model big cannot be served: <why its load failed>'],
      ['service_unavailable', 'cannot queue the request: Redis is unreachable; retry shortly'],
    ],
    headers: { 'retry-after': 'RetryAfter' },
  },
} satisfies Record<string, ErrorSpec>;

/** The errors of the admin routes, in TGI's shape. */
const ADMIN_ERRORS = {
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
  Unavailable: {
    status: 503,
    description: 'Postgres or Redis cannot be reached (`service_unavailable`, with `Retry-After`).',
    examples: [['service_unavailable', 'the model registry is unavailable: Postgres is unreachable; retry shortly']],
    headers: { 'retry-after': 'RetryAfter' },
  },
} satisfies Record<string, ErrorSpec>;

export type RouteErrorName = keyof typeof ROUTE_ERRORS;
export type AdminErrorName = keyof typeof ADMIN_ERRORS;
export type ErrorName = RouteErrorName | AdminErrorName;

/** The generation routes' errors. */
export const GENERATION_ERRORS: RouteErrorName[] = [
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

/** The errors of a route that resolves a model but generates nothing (`/tokenize`): no worker, no in-flight cap. */
export const MODEL_ERRORS: RouteErrorName[] = GENERATION_ERRORS.filter(
  (name) => name !== 'Generation' && name !== 'TooManyRequests',
);

export function errorCatalog(family: Family): Record<string, ErrorSpec> {
  return family === 'Admin' ? ADMIN_ERRORS : ROUTE_ERRORS;
}

/** An error's response object, with an example body per error type in the family's shape. */
export function errorResponse(family: Family, spec: ErrorSpec) {
  const body = (errorType: string, message: string) =>
    family === 'OpenAi'
      ? { error: { message, type: openAiType(spec.status), param: null, code: errorType } }
      : { error: message, error_type: errorType };
  const examples = Object.fromEntries(
    spec.examples.map(([errorType, message]) => [errorType, { summary: errorType, value: body(errorType, message) }]),
  );
  const headers: Record<string, { $ref: string }> = { 'x-request-id': { $ref: '#/components/headers/XRequestId' } };
  for (const [name, component] of Object.entries(spec.headers ?? {})) {
    headers[name] = { $ref: `#/components/headers/${component}` };
  }
  return {
    description: spec.description,
    headers,
    content: {
      'application/json': {
        schema: { $ref: `#/components/schemas/${family === 'OpenAi' ? 'OpenAiError' : 'TgiError'}` },
        examples,
      },
    },
  };
}
