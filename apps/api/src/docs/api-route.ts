/**
 * `@ApiRoute` puts a route's documentation beside its handler: its summary, the zod schemas of its body, path
 * and query (the same ones the handler parses with), its responses and the errors it can answer. The OpenAPI
 * document is generated from these marks and Nest's own route metadata, and the API refuses to start when a
 * route has none.
 */
import { SetMetadata } from '@nestjs/common';
import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import type { ErrorName } from './error-responses';

export const TAGS = {
  tgi: { name: 'Text Generation Inference', description: "Hugging Face text-generation-inference's routes." },
  openai: { name: 'OpenAI', description: "OpenAI's completions and models routes." },
  service: { name: 'Service', description: 'Model information, health and metrics. No key needed.' },
  admin: {
    name: 'Administration',
    description: 'API keys, the model registry, workers and usage. A key with the `admin` scope.',
  },
  docs: { name: 'Documentation', description: 'This documentation. No key needed.' },
} as const;

export type Tag = keyof typeof TAGS;

const header = (description: string, type: 'string' | 'integer' | 'number' = 'string') => ({
  description,
  schema: { type },
});

/** The response headers, by component name (`XRequestId` is `x-request-id`); every response has `x-request-id`. */
export const HEADERS = {
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
    'With `rate_limited` or `service_unavailable`: the seconds until the client may try again.',
    'integer',
  ),
};

export type HeaderName = Exclude<keyof typeof HEADERS, 'XRequestId'>;

/** The headers of a JSON generation response: TGI's timings and the served model. */
export const TIMING_HEADERS = (Object.keys(HEADERS) as (keyof typeof HEADERS)[]).filter(
  (h): h is HeaderName => h !== 'XRequestId' && h !== 'RetryAfter',
);

/** The headers of an SSE response: they go out with the first token, before any timing is known. */
export const STREAM_HEADERS: HeaderName[] = ['XServedModel', 'XComputeType'];

export interface RouteResponse extends Omit<ResponseConfig, 'headers'> {
  headers?: HeaderName[];
}

export interface ApiRouteSpec {
  tag: Tag;
  summary: string;
  description: string;
  operationId: string;
  /** The route reads the model from the `x-model` header too. */
  modelHeader?: boolean;
  body?: z.ZodType;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** The success responses, by status. */
  responses: Record<number, RouteResponse>;
  /** The errors it can answer, from the route family's catalog (`error-responses.ts`). */
  errors?: ErrorName[];
}

export const API_ROUTE = 'switchyard:api-route';

export const ApiRoute = (spec: ApiRouteSpec) => SetMetadata(API_ROUTE, spec);
