/**
 * One error type for every route. It carries TGI's status and `error_type`; the exception filter writes it in
 * the route family's shape: `{error, error_type}` on TGI routes, `{error: {message, type, code}}` under /v1.
 */
/** TGI's `error_type`s, as clients see them. */
export const ERROR_TYPES = [
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
] as const;

/** `cancelled` never reaches a client: nobody is listening any more. */
export type ErrorType = (typeof ERROR_TYPES)[number] | 'cancelled';

export class ApiError extends Error {
  override name = 'ApiError';

  constructor(
    readonly status: number,
    readonly errorType: ErrorType,
    message: string,
    /** Extra response headers (`Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  static validation(message: string): ApiError {
    return new ApiError(422, 'validation', message);
  }

  static overloaded(message = 'Model is overloaded'): ApiError {
    return new ApiError(429, 'overloaded', message);
  }

  static unavailable(message: string, errorType: ErrorType = 'unhealthy'): ApiError {
    return new ApiError(503, errorType, message);
  }

  /** A store the request needs (Postgres, Redis) cannot be reached: try again shortly. */
  static storeUnavailable(message: string): ApiError {
    return new ApiError(503, 'service_unavailable', message, { 'Retry-After': '5' });
  }

  static generation(message: string): ApiError {
    return new ApiError(424, 'generation', message);
  }
}

/** OpenAI's error `type` for an HTTP status. */
export function openAiType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_exceeded';
  if (status >= 500 || status === 424) return 'server_error';
  return 'invalid_request_error';
}
