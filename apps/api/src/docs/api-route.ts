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

/** Response headers by component name (see `openapi.ts`); every response has `x-request-id` as well. */
export type HeaderName =
  | 'XServedModel'
  | 'XComputeType'
  | 'XComputeTime'
  | 'XComputeCharacters'
  | 'XTotalTime'
  | 'XValidationTime'
  | 'XQueueTime'
  | 'XInferenceTime'
  | 'XTimePerToken'
  | 'XPromptTokens'
  | 'XGeneratedTokens'
  | 'XAttempts'
  | 'RetryAfter';

/** The headers of a JSON generation response: TGI's timings and the served model. */
export const TIMING_HEADERS: HeaderName[] = [
  'XServedModel',
  'XComputeType',
  'XComputeTime',
  'XComputeCharacters',
  'XTotalTime',
  'XValidationTime',
  'XQueueTime',
  'XInferenceTime',
  'XTimePerToken',
  'XPromptTokens',
  'XGeneratedTokens',
  'XAttempts',
];

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
