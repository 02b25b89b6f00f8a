/**
 * One generation request's way back to the client while the fallback chain runs it, and its accounting when it
 * ends. The client's disconnect (the response closing before it ended) aborts the request; the tokens the current
 * attempt has streamed are counted, since a request may move to a fallback only before its first, and the first
 * one's time is kept. At the end: TGI's timings, the request metrics, and the request's one usage record.
 */
import { performance } from 'node:perf_hooks';
import type { TokenEvent } from '@switchyard/batching';
import type { Principal } from '../auth/api-keys.service';
import type { ApiError } from '../common/api-error';
import type { ApiMetrics } from '../metrics/api-metrics';
import type { UsageRecord } from '../usage/usage.service';
import type { GenerationOutcome } from './generation.service';
import type { PreparedRequest } from './inference.service';

export interface Timings {
  totalMs: number;
  validationMs: number;
  queueMs: number;
  inferenceMs: number;
  timePerTokenMs: number;
}

/** What the relay needs of the response: its `close` event, and whether it had ended by then. */
export interface ClientResponse {
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
  readonly writableFinished: boolean;
}

export class StreamRelay {
  private readonly controller = new AbortController();
  private streamed = 0;
  /** performance.now() when the first token went to the client; 0 before that. */
  firstTokenAt = 0;
  private readonly onClose = () => {
    if (!this.res.writableFinished) this.controller.abort();
  };

  constructor(private readonly res: ClientResponse) {
    res.on('close', this.onClose);
  }

  /** Aborted when the client goes away. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether the attempt under way has sent a token to the client. */
  tokensSent(): boolean {
    return this.streamed > 0;
  }

  /**
   * Starts an attempt on `prepared`: its tokens are counted from zero. Returns the attempt's token callback, which
   * hands each token to the route's `onToken` (undefined when the route does not stream).
   */
  attempt(
    prepared: PreparedRequest,
    onToken: ((event: TokenEvent, prepared: PreparedRequest) => void) | undefined,
  ): ((event: TokenEvent) => void) | undefined {
    this.streamed = 0;
    if (!onToken) return undefined;
    return (event) => {
      if (this.streamed++ === 0) this.firstTokenAt = performance.now();
      onToken(event, prepared);
    };
  }

  /** Stops following the client's disconnect: the request has ended. */
  detach(): void {
    this.res.off('close', this.onClose);
  }
}

/** TGI's timings of a served request: queue time from the API's enqueue, inference time from the worker. */
export function requestTimings(prepared: PreparedRequest, outcome: GenerationOutcome, now: number): Timings {
  const { final } = outcome;
  const totalMs = now - prepared.arrived;
  const pickup = outcome.startedAt > 0 ? Math.max(0, outcome.startedAt - outcome.queuedAt) : 0;
  const queueMs = pickup + final.queueMs;
  const tokens = Math.max(1, final.details.generatedTokens);
  return {
    totalMs,
    validationMs: prepared.validationMs,
    queueMs,
    inferenceMs: final.inferenceMs,
    timePerTokenMs: final.inferenceMs / tokens,
  };
}

/** The request metrics of a served request, under TGI's names. */
export function observeServed(
  metrics: ApiMetrics,
  prepared: PreparedRequest,
  outcome: GenerationOutcome,
  timings: Timings,
): void {
  metrics.success.inc();
  metrics.duration.observe(timings.totalMs / 1000);
  metrics.queueDuration.observe(timings.queueMs / 1000);
  metrics.inferenceDuration.observe(timings.inferenceMs / 1000);
  metrics.timePerToken.observe(timings.timePerTokenMs / 1000);
  metrics.generatedTokens.observe(outcome.final.details.generatedTokens);
  metrics.inputLength.observe(prepared.inputIds.length);
  metrics.maxNewTokens.observe(prepared.parameters.maxNewTokens);
}

/** A request's end in the metrics, from its usage row: its route, model and status, and a stream's TTFT. */
export function observeEnd(metrics: ApiMetrics, row: UsageRecord): void {
  const model = row.servedModel ?? row.requestedModel ?? 'none';
  metrics.requests.inc({ route: row.route, model, status: String(row.status) });
  if (row.ttftMs !== null && row.servedModel !== null) {
    metrics.timeToFirstToken.observe({ model: row.servedModel }, row.ttftMs / 1000);
  }
}

/** What one request, served or not, leaves in the usage table. */
export interface RequestEnd {
  requestId: string;
  principal: Principal;
  route: string;
  /** The model the request named, once known. */
  requested: string | null;
  /** The last candidate's validated request, if one got that far. */
  prepared: PreparedRequest | null;
  outcome: GenerationOutcome | null;
  failure: ApiError | null;
  timings: Timings | null;
  /** performance.now() when the request started, and when its first token went out (0: none did). */
  started: number;
  firstTokenAt: number;
  now: number;
}

export function usageRecord(end: RequestEnd): UsageRecord {
  const { prepared, outcome, failure, timings } = end;
  const final = outcome?.final;
  return {
    requestId: end.requestId,
    keyId: end.principal.keyId,
    requestedModel: end.requested,
    servedModel: outcome ? prepared!.model.spec.id : null,
    route: end.route,
    promptTokens: final?.inputTokens ?? prepared?.inputIds.length ?? 0,
    generatedTokens: final?.details.generatedTokens ?? 0,
    finishReason: final?.details.finishReason ?? null,
    status: failure ? failure.status : 200,
    errorType: failure?.errorType ?? null,
    queueMs: timings?.queueMs ?? null,
    ttftMs: end.firstTokenAt > 0 ? end.firstTokenAt - end.started : null,
    totalMs: end.now - end.started,
    createdAt: new Date(),
  };
}
