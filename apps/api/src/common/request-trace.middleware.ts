/**
 * With tracing on, each request that is not a GET, HEAD or OPTIONS (the generation routes are POSTs; the polled
 * public routes, /health and /metrics, are GETs and stay out) gets a server span: a child of the client's
 * `traceparent` when it sent a valid one, else the root of a new trace. Its response carries the header
 * `traceparent` naming that span, so a client finds its request's trace either way. The request path's own spans
 * (validation, placement, the run on a worker) take `requestTrace(req)` as their parent. Not installed when
 * tracing is off: then `requestTrace` is the root context, and the spans under it OpenTelemetry's no-ops.
 */
import type { NextFunction, Request, Response } from 'express';
import {
  ATTR,
  carrierOf,
  contextFrom,
  Context,
  failSpan,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  tracer,
} from '@switchyard/telemetry';

type TracedRequest = Request & { requestId?: string; traceContext?: Context };

export function traceRequest(req: Request, res: Response, next: NextFunction): void {
  if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
  const parent = contextFrom(req.headers);
  const span = tracer.startSpan(
    req.method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': req.method,
        'url.path': req.path,
        [ATTR.requestId]: (req as TracedRequest).requestId ?? '',
      },
    },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  (req as TracedRequest).traceContext = ctx;
  const { traceparent } = carrierOf(ctx);
  if (traceparent) res.setHeader('traceparent', traceparent);
  res.once('close', () => {
    // the route Express matched, once it has: `POST /generate`, never a path with ids in it
    const route = (req.route as { path?: unknown } | undefined)?.path;
    if (typeof route === 'string') {
      span.updateName(`${req.method} ${route}`);
      span.setAttribute('http.route', route);
    }
    span.setAttribute('http.response.status_code', res.statusCode);
    if (!res.writableFinished) span.setAttribute('switchyard.client_disconnected', true);
    if (res.statusCode >= 500) failSpan(span, new Error(`status ${res.statusCode}`));
    span.end();
  });
  next();
}

/** The context of the request's server span: the parent of its own spans (the root context when not traced). */
export function requestTrace(req: Request): Context {
  return (req as TracedRequest).traceContext ?? ROOT_CONTEXT;
}
