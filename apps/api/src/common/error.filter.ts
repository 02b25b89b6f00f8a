/**
 * Every error leaves in its route family's shape with a clear message: TGI's `{error, error_type}`, or OpenAI's
 * `{error: {message, type, code}}` under /v1. Body-parser failures (malformed JSON, oversized bodies), unknown
 * routes and unexpected exceptions included; an unexpected one is logged with its stack, never sent. A failure to
 * reach Postgres or Redis is a 503 `service_unavailable`.
 */
import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { dependencyState } from '../health/dependencies';
import { ApiError, openAiType } from './api-error';

export function isOpenAiRoute(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/');
}

/** Writes an error in the right shape, or, once a stream has started, as its last event. */
export function sendError(req: Request, res: Response, error: ApiError): void {
  if (res.headersSent) {
    if (!res.writableEnded) {
      const openAi = isOpenAiRoute(req.path);
      const body = openAi
        ? { error: { message: error.message, type: openAiType(error.status), code: error.errorType } }
        : { error: error.message, error_type: error.errorType };
      res.write(`${openAi ? 'data: ' : 'data:'}${JSON.stringify(body)}\n\n`);
      res.end();
    }
    return;
  }
  res.status(error.status);
  res.set(error.headers);
  if (isOpenAiRoute(req.path)) {
    res.json({ error: { message: error.message, type: openAiType(error.status), param: null, code: error.errorType } });
  } else {
    res.json({ error: error.message, error_type: error.errorType });
  }
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    sendError(req, res, this.toApiError(exception, req));
  }

  toApiError(exception: unknown, req: Request): ApiError {
    if (exception instanceof ApiError) return exception;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      if (status === 404) return new ApiError(404, 'not_found', `no route for ${req.method} ${req.path}`);
      if (status === 413) return new ApiError(413, 'payload_too_large', 'the request body is too large');
      if (status < 500) return new ApiError(status, 'bad_request', exception.message);
    }
    // body-parser's errors carry a status and a type
    const parser = exception as { status?: number; type?: string; message?: string };
    if (parser?.type === 'entity.parse.failed') {
      return new ApiError(400, 'bad_request', `the request body is not valid JSON: ${parser.message}`);
    }
    if (parser?.type === 'entity.too.large') {
      return new ApiError(413, 'payload_too_large', 'the request body is larger than the payload limit');
    }
    if (typeof parser?.status === 'number' && parser.status >= 400 && parser.status < 500) {
      return new ApiError(parser.status, 'bad_request', parser.message ?? 'bad request');
    }
    // a store that cannot be reached: 503, and one log line per outage (dependencies.ts), not a stack per request
    if (dependencyState.report(exception)) {
      return ApiError.storeUnavailable(
        `the service cannot reach a store it needs right now (${dependencyState.describe() ?? 'a connection failed'}); retry shortly`,
      );
    }
    this.logger.error(`${req.method} ${req.path}: ${(exception as Error)?.stack ?? String(exception)}`);
    return new ApiError(500, 'internal', 'internal error; the server log has the details');
  }
}
