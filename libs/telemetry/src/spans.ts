/**
 * What the API and the workers trace with: the tracer, W3C trace context in and out of the carriers that cross a
 * process (a request's headers, a job's or a command's payload), spans around a step, and spans built afterwards
 * from times measured elsewhere (the engine thread). While tracing is off (`startTracing` found no endpoint), the
 * tracer is OpenTelemetry's no-op and the propagator reads and writes nothing: every helper here costs next to
 * nothing and records nothing.
 */
import {
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

export { SpanKind, trace, ROOT_CONTEXT };
export type { Attributes, Context, Span };

/** A proxy: it forwards to the SDK's tracer once `startTracing` registered one, and is a no-op until then. */
export const tracer = trace.getTracer('switchyard');

/** Attribute names of Switchyard's spans, beside OpenTelemetry's own (`http.*`, `messaging.*`, `gen_ai.*`). */
export const ATTR = {
  requestId: 'switchyard.request_id',
  attempt: 'switchyard.attempt',
  worker: 'switchyard.worker',
  /** How a request ended on a worker: `success`, an error type, `shutdown` or `requeue`. */
  outcome: 'switchyard.outcome',
  /** The API's placement: live workers holding (or loading) the model, and whether a load was asked for. */
  holders: 'switchyard.placement.holders',
  loadRequested: 'switchyard.placement.load_requested',
  /** The worker chosen for a load command, and why the load was asked for. */
  target: 'switchyard.placement.target',
  reason: 'switchyard.placement.reason',
  /** Where a load's weights came from: `page_cache`, `cold`, `unknown` or `parked`. */
  loadTier: 'switchyard.load.tier',
  model: 'gen_ai.request.model',
  inputTokens: 'gen_ai.usage.input_tokens',
  outputTokens: 'gen_ai.usage.output_tokens',
  finishReasons: 'gen_ai.response.finish_reasons',
  queue: 'messaging.destination.name',
} as const;

/** W3C trace context as it travels in a job or a command (libs/protocol's `traceContextSchema`). */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

/** The context a carrier holds (request headers, a job's payload); the root context when it holds none. */
export function contextFrom(carrier: object | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

/** `ctx`'s span as a carrier, to put in a job or a command; empty while tracing is off. */
export function carrierOf(ctx: Context): TraceCarrier {
  const carrier: TraceCarrier = {};
  propagation.inject(ctx, carrier);
  return carrier;
}

/** Marks a span failed with the error's message (never its stack: spans leave the process). */
export function failSpan(span: Span, err: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** Runs `fn` in a span under `parent`; the span ends when `fn` settles, failed if it throws. */
export async function inSpan<T>(
  name: string,
  parent: Context,
  attributes: Attributes,
  fn: (ctx: Context, span: Span) => T | Promise<T>,
  kind = SpanKind.INTERNAL,
): Promise<T> {
  const span = tracer.startSpan(name, { attributes, kind }, parent);
  try {
    return await fn(trace.setSpan(parent, span), span);
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A span whose times were measured elsewhere (epoch milliseconds): another thread, or another process, whose clock
 * may differ from this one's by the machines' skew. Returns the context its children take.
 */
export function recordSpan(
  name: string,
  parent: Context,
  startMs: number,
  endMs: number,
  attributes: Attributes = {},
  kind = SpanKind.INTERNAL,
): Context {
  const span = tracer.startSpan(name, { startTime: startMs, attributes, kind }, parent);
  span.end(Math.max(startMs, endMs));
  return trace.setSpan(parent, span);
}
