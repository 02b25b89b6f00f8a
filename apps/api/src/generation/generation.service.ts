/**
 * Runs one validated request on the workers: makes sure a live worker holds (or is loading) the model, sending
 * a load command when none does (with no worker up at all, the request waits in its queue up to --place-timeout for
 * one), queues the job, follows its token stream, and settles with the final event or an `ApiError`. A client that
 * goes away cancels the request. A worker that dies mid-request makes the job run again: a non-streaming caller
 * never notices; a stream that already sent tokens ends with an error.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FinalEvent, GenerationParameters, TokenEvent } from '@switchyard/batching';
import { parseLoadError, type StreamEvent } from '@switchyard/protocol';
import {
  ATTR,
  carrierOf,
  type Context,
  failSpan,
  inSpan,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  tracer,
} from '@switchyard/telemetry';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import type { ResolvedModel } from '../registry/model-registry.service';
import { RedisService } from '../redis/redis.service';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { StreamHub } from './stream-hub';

export interface GenerationInput {
  requestId: string;
  model: ResolvedModel;
  inputIds: number[];
  inputText: string;
  parameters: GenerationParameters;
}

export interface RunOptions {
  /** Called for each token of the attempt that is streaming to the client. */
  onToken?: (event: TokenEvent) => void;
  /** Aborted when the client disconnects. */
  signal?: AbortSignal;
  /** The request's `keep_alive`, for the worker (milliseconds, -1 or 0). */
  keepAliveMs?: number;
  /** The request's trace: the parent of the placement and generate spans. */
  trace?: Context;
}

export interface GenerationOutcome {
  final: FinalEvent;
  /** The last token, which a stream sends together with the final text; undefined if none was generated. */
  lastToken?: TokenEvent;
  /** Epoch milliseconds: queued by the API, and started by the worker. */
  queuedAt: number;
  startedAt: number;
  attempt: number;
  worker: string;
}

/** How often a request that has not started looks for a failed load of its model. */
const PLACEMENT_CHECK_MS = 200;
/** While a model is still not held, its load command is not sent again sooner than this. */
const LOAD_RESEND_MS = 5000;

@Injectable()
export class GenerationService {
  private readonly logger = new Logger('Generation');
  private readonly loadSent = new Map<string, number>();
  private readonly loadErrors = new Map<string, { at: number; value: Promise<string | null> }>();

  constructor(
    private readonly redis: RedisService,
    private readonly workers: WorkerDirectory,
    private readonly hub: StreamHub,
    @Inject(API_CONFIG) private readonly config: Pick<ApiConfig, 'placeTimeoutMs'>,
  ) {}

  /**
   * Makes sure a live worker holds or loads the model, in a span of the request's trace, which the load command
   * carries on to the workers' placement and load. Throws 503 once the request has waited `--place-timeout` with
   * no live worker at all.
   */
  async place(model: ResolvedModel, waitingSince: number, parent: Context = ROOT_CONTEXT): Promise<void> {
    await inSpan('placement', parent, { [ATTR.model]: model.spec.id }, async (ctx) => {
      const error = await this.ensurePlaced(model, waitingSince, ctx);
      if (error) throw error;
    });
  }

  /**
   * Sends a load command when no live worker holds the model. With no live worker at all the request still goes on
   * its queue: the command waits on the control queue for the first worker that comes up (scaling from zero), and
   * the request fails with 503 only once it has waited `--place-timeout` with none live.
   */
  private async ensurePlaced(
    model: ResolvedModel,
    waitingSince: number,
    ctx: Context = ROOT_CONTEXT,
  ): Promise<ApiError | null> {
    const { loaded, loading, live } = await this.workers.holders(model.spec.id);
    const span = trace.getSpan(ctx);
    span?.setAttribute(ATTR.holders, loaded.length + loading.length);
    if (loaded.length + loading.length > 0) {
      this.loadSent.delete(model.spec.id); // held again: next time, ask at once
      return null;
    }
    if (live === 0 && Date.now() - waitingSince >= this.config.placeTimeoutMs) {
      return ApiError.unavailable(
        `no worker is available: none came up within --place-timeout (${this.config.placeTimeoutMs} ms); start one`,
      );
    }
    // awaited apart: `span?.setAttribute(..., await ...)` skips its arguments where there is no span (the watchdog's)
    const requested = await this.requestLoad(model, ctx);
    span?.setAttribute(ATTR.loadRequested, requested);
    return null;
  }

  async run(input: GenerationInput, options: RunOptions = {}): Promise<GenerationOutcome> {
    const { requestId, model } = input;
    const parent = options.trace ?? ROOT_CONTEXT;
    await this.place(model, Date.now(), parent);
    const queuedAt = Date.now();
    // From the job's enqueueing to its end: the workers' spans (queue wait, processing) are its children.
    const span = tracer.startSpan(
      'generate',
      {
        kind: SpanKind.CLIENT,
        attributes: {
          [ATTR.model]: model.spec.id,
          [ATTR.queue]: `generate:${model.spec.id}`,
          [ATTR.requestId]: requestId,
        },
      },
      parent,
    );
    const outcome = this.follow(input, options, queuedAt, trace.setSpan(parent, span));
    outcome.then(
      (o) => {
        span.setAttributes({
          [ATTR.attempt]: o.attempt,
          [ATTR.worker]: o.worker,
          [ATTR.outputTokens]: o.final.details.generatedTokens,
          [ATTR.finishReasons]: [o.final.details.finishReason],
        });
        span.end();
      },
      (err: unknown) => {
        // a client that went away is no failure of the run; its span says so and stays unmarked
        if (err instanceof ApiError && err.status === 499) span.setAttribute(ATTR.outcome, 'cancelled');
        else failSpan(span, err);
        span.end();
      },
    );
    return outcome;
  }

  /** Queues the job, follows its events to the end, and settles with its outcome. */
  private follow(
    input: GenerationInput,
    options: RunOptions,
    queuedAt: number,
    ctx: Context,
  ): Promise<GenerationOutcome> {
    const { requestId, model } = input;
    return new Promise<GenerationOutcome>((resolve, reject) => {
      let attempt = 0;
      let startedAt = 0;
      let worker = '';
      let streamed = 0;
      let settled = false;
      const finish = (error: ApiError | null, final?: FinalEvent & { lastToken?: TokenEvent }) => {
        if (settled) return;
        settled = true;
        unsubscribe();
        clearInterval(watchdog);
        options.signal?.removeEventListener('abort', onAbort);
        if (error) reject(error);
        else {
          const { lastToken, ...rest } = final!;
          resolve({ final: rest, lastToken, queuedAt, startedAt, attempt, worker });
        }
      };
      /** Ends the request with `error` and takes its job off the queue or the worker's batch. */
      const abandon = (error: ApiError, onCancelFailed: (err: Error) => void = () => undefined) => {
        finish(error);
        void this.redis.cancel(model.spec.id, requestId).catch(onCancelFailed);
      };
      const onEvent = (event: StreamEvent) => {
        if (event.attempt < attempt) return; // a dead attempt's late entries
        if (event.attempt > attempt) {
          if (attempt > 0) {
            this.logger.warn(`request ${requestId}: attempt ${attempt} died, attempt ${event.attempt} runs`);
            if (streamed > 0) {
              abandon(ApiError.generation('the worker serving this request failed after tokens were sent'));
              return;
            }
          }
          attempt = event.attempt;
        }
        switch (event.type) {
          case 'start':
            startedAt = event.at;
            worker = event.worker;
            // a worker holds the model now: if it is evicted later, the next request asks for a load at once
            this.loadSent.delete(model.spec.id);
            break;
          case 'token':
            if (options.onToken) {
              streamed++;
              options.onToken(event);
            }
            break;
          case 'final':
            finish(null, event);
            break;
          case 'error':
            finish(errorFromEvent(event.errorType, event.message));
            break;
        }
      };
      const unsubscribe = this.hub.subscribe(requestId, onEvent, (message, cause) =>
        abandon(cause === 'disconnected' ? ApiError.storeUnavailable(message) : ApiError.generation(message)),
      );
      const onAbort = () =>
        abandon(new ApiError(499, 'cancelled', 'the client disconnected'), (err) =>
          this.logger.warn(`cancelling ${requestId} failed: ${err.message}`),
        );
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // Until the job starts: a failed load of its model fails it, and a model no live worker holds any more
      // (its worker died, or evicted it) is placed again.
      const watchdog = setInterval(() => {
        if (startedAt !== 0 || settled) return;
        void this.checkPlacement(model, queuedAt).then(
          (error) => {
            if (!error || settled || startedAt !== 0) return;
            abandon(error);
          },
          () => undefined,
        );
      }, PLACEMENT_CHECK_MS);
      this.redis
        .enqueue({
          requestId,
          model: model.spec.id,
          inputIds: input.inputIds,
          inputText: input.inputText,
          parameters: input.parameters,
          queuedAt,
          notify: this.hub.instanceId,
          ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
          ...carrierOf(ctx),
        })
        .catch((err: Error) =>
          finish(err instanceof ApiError ? err : ApiError.unavailable(`cannot queue the request: ${err.message}`)),
        );
    });
  }

  /** Sends a load command, unless one went out lately; whether it sent one. */
  private async requestLoad(model: ResolvedModel, ctx: Context): Promise<boolean> {
    const last = this.loadSent.get(model.spec.id) ?? 0;
    if (Date.now() - last < LOAD_RESEND_MS) return false;
    this.loadSent.set(model.spec.id, Date.now());
    this.logger.log(`no live worker holds ${model.spec.id}: asking for a load`);
    await this.redis.sendControl({ type: 'load', spec: model.spec, reason: 'request', ...carrierOf(ctx) });
    return true;
  }

  /** An error for a request still waiting to start, or null while it may still run. */
  private async checkPlacement(model: ResolvedModel, since: number): Promise<ApiError | null> {
    const raw = await this.loadError(model.spec.id);
    const failure = raw === null ? null : parseLoadError(raw);
    if (failure) {
      if (failure.at >= since - LOAD_RESEND_MS) {
        return ApiError.unavailable(`model ${model.spec.id} cannot be served: ${failure.error}`, 'cannot_place');
      }
    }
    return this.ensurePlaced(model, since);
  }

  /**
   * A model's last load error, read at most once per check interval however many requests wait for it: every
   * waiting request's watchdog asks.
   */
  private loadError(model: string): Promise<string | null> {
    const cached = this.loadErrors.get(model);
    if (cached && Date.now() - cached.at < PLACEMENT_CHECK_MS) return cached.value;
    const value = this.redis.redis.get(this.redis.names.loadError(model));
    this.loadErrors.set(model, { at: Date.now(), value });
    return value;
  }
}

function errorFromEvent(errorType: string, message: string): ApiError {
  switch (errorType) {
    case 'validation':
      return ApiError.validation(message);
    case 'overloaded':
      return ApiError.overloaded(message);
    case 'cancelled':
      return new ApiError(499, 'cancelled', message);
    default:
      return ApiError.generation(message);
  }
}
