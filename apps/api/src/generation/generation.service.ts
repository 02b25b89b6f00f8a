/**
 * Runs one validated request on the workers: makes sure a live worker holds (or is loading) the model, sending
 * a load command when none does, queues the job, follows its token stream, and settles with the final event or
 * an `ApiError`. A client that goes away cancels the request. A worker that dies mid-request makes the job run
 * again: a non-streaming caller never notices; a stream that already sent tokens ends with an error.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { FinalEvent, GenerationParameters, TokenEvent } from '@switchyard/batching';
import { parseLoadError, type StreamEvent } from '@switchyard/protocol';
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
    @Inject(API_CONFIG) private readonly config: Pick<ApiConfig, 'coldStartTimeoutMs'>,
  ) {}

  /** 503 when no live worker could serve the model; sends a load command when none holds it. */
  async place(model: ResolvedModel): Promise<void> {
    const error = await this.ensurePlaced(model, Date.now());
    if (error) throw error;
  }

  /**
   * An error when no live worker could serve the model; otherwise asks for a load when none holds it. With no
   * live worker at all, a request that has waited less than `--cold-start-timeout` since `since` waits on: its load
   * command and its job stay queued for the worker an autoscaler starts (KEDA, on the queue depth in /metrics).
   */
  private async ensurePlaced(model: ResolvedModel, since: number): Promise<ApiError | null> {
    const { loaded, loading, live } = await this.workers.holders(model.spec.id);
    if (live === 0 && Date.now() - since >= this.config.coldStartTimeoutMs) {
      return ApiError.unavailable('no worker is available: start one, or wait for it to come up');
    }
    if (loaded.length + loading.length > 0)
      this.loadSent.delete(model.spec.id); // held again: next time, ask at once
    else await this.requestLoad(model);
    return null;
  }

  async run(input: GenerationInput, options: RunOptions = {}): Promise<GenerationOutcome> {
    const { requestId, model } = input;
    await this.place(model);
    const queuedAt = Date.now();
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
        })
        .catch((err: Error) =>
          finish(err instanceof ApiError ? err : ApiError.unavailable(`cannot queue the request: ${err.message}`)),
        );
    });
  }

  private async requestLoad(model: ResolvedModel): Promise<void> {
    const last = this.loadSent.get(model.spec.id) ?? 0;
    if (Date.now() - last < LOAD_RESEND_MS) return;
    this.loadSent.set(model.spec.id, Date.now());
    this.logger.log(`no live worker holds ${model.spec.id}: asking for a load`);
    await this.redis.sendControl({ type: 'load', spec: model.spec, reason: 'request' });
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
