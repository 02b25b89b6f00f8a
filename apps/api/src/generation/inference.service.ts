/**
 * The path every generation route shares. For the model a request names, and then its fallbacks in order: check
 * the key's allowlist, skip a model that is disabled, cannot load or is overloaded, validate and tokenize as TGI
 * does (with that model's tokenizer), take an in-flight slot and the key's rate limits, and run it on the
 * workers; a generation error before the first token moves on to the next model too. Every request leaves one
 * usage record. Routes only translate their own formats, through `build`.
 *
 * `serve` puts together the units that do each part: route-resolver.ts (which models, in which order),
 * admission.ts (in-flight cap, rate limits, queue wait), fallback-chain.ts (moving on), and stream-relay.ts (the
 * client's side of the run, and the accounting at the end).
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { GenerationParameters, TokenEvent, ValidationError } from '@switchyard/batching';
import type { z } from 'zod';
import type { Principal } from '../auth/api-keys.service';
import { principalOf } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { checkGrammarOffThread } from '../common/grammar';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { RateLimiter, Reservation } from '../limits/rate-limiter.service';
import { ApiMetrics } from '../metrics/api-metrics';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { ModelRegistry, ResolvedModel } from '../registry/model-registry.service';
import { UsageRecord, UsageService } from '../usage/usage.service';
import { Admission } from './admission';
import { runChain } from './fallback-chain';
import { GenerationOutcome, GenerationService } from './generation.service';
import { RouteResolver } from './route-resolver';
import {
  ClientResponse,
  observeEnd,
  observeServed,
  requestTimings,
  StreamRelay,
  Timings,
  usageRecord,
} from './stream-relay';
import { TokenizerThread } from './tokenizer-thread';
import { validateRequest } from './validate-request';
import { parseWith } from '../common/schema';
import { requestTrace } from '../common/request-trace.middleware';
import { ATTR, inSpan } from '@switchyard/telemetry';

export interface PreparedRequest {
  requestId: string;
  model: ResolvedModel;
  inputIds: number[];
  inputText: string;
  parameters: GenerationParameters;
  /** Whether the client asked for `details` (the engine always computes them). */
  wantDetails: boolean;
  /** TGI's `x-compute-type`: the device the workers run on. */
  computeType: string;
  /** performance.now() when the request arrived, and the validation time in milliseconds. */
  arrived: number;
  validationMs: number;
}

export interface ServeRequest {
  /** The route, for the usage record (`/generate`, `/v1/chat/completions`, ...). */
  route: string;
  /** The model the client named (undefined: the default). */
  model: unknown;
  /** The client's own fallback list, replacing the model's. */
  fallbacks?: readonly string[] | null;
  /** Ollama's `keep_alive`, parsed: milliseconds the model stays resident once idle (-1: always, 0: none). */
  keepAlive?: number | null;
  stream: boolean;
  /**
   * The id of this generation's job and usage row, when the request runs several (OpenAI's `n`): each its own.
   * Default: the request's id. `build` gives its PreparedRequest the same.
   */
  requestId?: string;
  /** Builds the validated request for one candidate model (prompt, template, parameters); throws ApiError. */
  build(model: ResolvedModel): PreparedRequest | Promise<PreparedRequest>;
  /** Streaming only: each token, with the request it belongs to. */
  onToken?: (event: TokenEvent, prepared: PreparedRequest) => void;
}

export interface Served {
  prepared: PreparedRequest;
  outcome: GenerationOutcome;
  timings: Timings;
}

@Injectable()
export class InferenceService {
  private readonly logger = new Logger('Inference');
  private readonly routes: RouteResolver;
  private readonly admission: Admission;

  constructor(
    registry: ModelRegistry,
    private readonly generation: GenerationService,
    private readonly metrics: ApiMetrics,
    limiter: RateLimiter,
    private readonly usage: UsageService,
    workers: WorkerDirectory,
    private readonly tokenizers: TokenizerThread,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {
    this.routes = new RouteResolver(registry);
    this.admission = new Admission(metrics, limiter, workers, config);
  }

  /** The request id the middleware gave this request. */
  /** A request's end: its usage row, and its route, model, status and a stream's TTFT in the metrics. */
  private recordEnd(row: UsageRecord): void {
    observeEnd(this.metrics, row);
    this.usage.record(row);
  }

  requestId(req: Request): string {
    return (req as Request & { requestId?: string }).requestId ?? randomUUID();
  }

  /**
   * A generation request's body parsed by its schema. One that fails still leaves its usage row (status 422), as
   * every request to a generation route does, whether it was served or not.
   */
  parse<S extends z.ZodType>(req: Request, route: string, schema: S, raw: unknown): z.output<S> {
    const started = performance.now();
    try {
      return parseWith(schema, raw);
    } catch (err) {
      const failure = err as ApiError;
      this.metrics.failure.inc({ err: failure.errorType });
      let requested: string | null = null;
      try {
        requested = this.routes.modelId((raw as { model?: unknown } | null)?.model);
      } catch {
        // not a model id: the row names none
      }
      this.recordEnd(
        usageRecord({
          requestId: this.requestId(req),
          principal: principalOf(req),
          route,
          requested,
          prepared: null,
          outcome: null,
          failure,
          timings: null,
          started,
          firstTokenAt: 0,
          now: performance.now(),
        }),
      );
      throw err;
    }
  }

  /** An enabled model by id (for /tokenize and /info); 404 when there is none. */
  model(name: unknown, principal?: Principal): Promise<ResolvedModel> {
    return this.routes.model(name, principal);
  }

  /**
   * The prompt's token ids, or an error before any tokenizing when the text is too long to fit the model's input
   * limit (see `ModelTokenizer.charBound`; with `truncate` any length up to the payload limit is taken). Long texts
   * are encoded off the event loop.
   */
  async promptIds(model: ResolvedModel, text: string, truncate: boolean): Promise<number[]> {
    const { tokenizer } = model.description;
    const limit = model.limits.maxInputTokens;
    const bound = tokenizer.charBound(limit);
    if (!truncate && text.length > bound) {
      throw ApiError.validation(
        `\`inputs\` is ${text.length} characters long: model ${model.spec.id} takes at most ${limit} input tokens, ` +
          `and no text of more than ${bound} characters fits in that many`,
      );
    }
    return this.tokenizers.encode(model.spec.path, tokenizer, text);
  }

  /** TGI validation of `inputs` and `parameters`, with the model's default parameters under them. */
  async prepare(
    req: Request,
    model: ResolvedModel,
    inputs: string,
    own: Record<string, unknown> | null | undefined,
    options: { stream: boolean },
  ): Promise<PreparedRequest> {
    const arrived = performance.now();
    const merged: Record<string, unknown> = { ...model.record.defaultParameters, ...own };
    const ids = inputs.length > 0 ? await this.promptIds(model, inputs, merged.truncate != null) : null;
    try {
      const { inputIds, parameters } = validateRequest(
        inputs,
        merged,
        (text) => (ids !== null && text === inputs ? ids : model.description.tokenizer.encode(text)),
        model.limits,
        options,
      );
      if (parameters.grammar !== null) await checkGrammarOffThread(parameters.grammar);
      const vocab = model.description.config.vocabSize;
      const outside = parameters.logitBias.find(([id]) => id >= vocab);
      if (outside) {
        throw ApiError.validation(`\`logit_bias\` names token ${outside[0]}, past the model's vocabulary of ${vocab}`);
      }
      return {
        requestId: this.requestId(req),
        model,
        inputIds,
        inputText: inputs,
        parameters,
        wantDetails: merged.details === true,
        computeType: this.config.executionProvider,
        arrived,
        validationMs: performance.now() - arrived,
      };
    } catch (err) {
      if (err instanceof ValidationError) throw ApiError.validation(err.message);
      throw err;
    }
  }

  /**
   * Serves a generation request on its model or a fallback. The client's disconnect (the response closing
   * before it ended) cancels it. Always leaves a usage record.
   */
  async serve(req: Request, res: ClientResponse, request: ServeRequest): Promise<Served> {
    const started = performance.now();
    const principal = principalOf(req);
    const requestId = request.requestId ?? this.requestId(req);
    const trace = requestTrace(req);
    let requested: string | null = null;
    let prepared = null as PreparedRequest | null;
    let outcome: GenerationOutcome | null = null;
    let timings: Timings | null = null;
    let relay: StreamRelay | null = null;
    let failure: ApiError | null = null;
    let admitted = false;
    try {
      requested = this.routes.modelId(request.model);
      const keepAliveMs = request.keepAlive ?? undefined;
      this.routes.checkAllowed(principal, requested);
      this.admission.admit();
      admitted = true;
      this.metrics.count.inc();
      const candidates = await this.routes.candidates(requested, request.fallbacks, principal);
      const attempts = new StreamRelay(res);
      relay = attempts;
      // set inside the chain's attempts (a cast, so that TypeScript does not narrow it to null here)
      let reservation = null as Reservation | null;
      try {
        outcome = await runChain(candidates, {
          lookup: (id) => this.routes.lookup(id),
          overloaded: (id) => this.admission.overloaded(id),
          tokensSent: () => attempts.tokensSent(),
          onFallback: (from, to, reason, error) => {
            this.logger.warn(`${requestId}: ${from} -> ${to} (${reason}: ${error.message})`);
            this.metrics.fallbacks.inc({ from, to, reason });
          },
          attempt: async (model) => {
            // TGI's validation: the prompt tokenized and every parameter checked, for this candidate model
            const current = await inSpan('validate', trace, { [ATTR.model]: model.spec.id }, async (_ctx, span) => {
              const built = await request.build(model);
              span.setAttribute(ATTR.inputTokens, built.inputIds.length);
              return built;
            });
            prepared = current;
            this.metrics.validationDuration.observe(current.validationMs / 1000);
            reservation ??= await this.admission.reserve(
              principal,
              current.inputIds.length + current.parameters.maxNewTokens,
            );
            return this.generation.run(current, {
              signal: attempts.signal,
              keepAliveMs,
              onToken: attempts.attempt(current, request.onToken),
              trace,
            });
          },
        });
      } finally {
        attempts.detach();
        reservation?.settle(outcome ? outcome.final.inputTokens + outcome.final.details.generatedTokens : 0);
      }
      if (!outcome || !prepared) throw ApiError.unavailable('no model could serve the request');
      timings = requestTimings(prepared, outcome, performance.now());
      observeServed(this.metrics, prepared, outcome, timings);
      return { prepared, outcome, timings };
    } catch (err) {
      failure = err instanceof ApiError ? err : new ApiError(500, 'internal', (err as Error).message);
      this.metrics.failure.inc({ err: failure.errorType });
      throw err;
    } finally {
      if (admitted) this.admission.release();
      this.recordEnd(
        usageRecord({
          requestId,
          principal,
          route: request.route,
          requested,
          prepared,
          outcome,
          failure,
          timings,
          started,
          firstTokenAt: relay?.firstTokenAt ?? 0,
          now: performance.now(),
        }),
      );
    }
  }
}

/** TGI's timing headers, plus the served model. */
export function timingHeaders(served: Served): Record<string, string> {
  const { prepared, outcome, timings: t } = served;
  const ms = (v: number) => String(Math.round(v));
  return {
    'x-compute-type': prepared.computeType,
    'x-compute-time': (t.totalMs / 1000).toFixed(6),
    'x-compute-characters': String(prepared.inputText.length),
    'x-total-time': ms(t.totalMs),
    'x-validation-time': ms(t.validationMs),
    'x-queue-time': ms(t.queueMs),
    'x-inference-time': ms(t.inferenceMs),
    'x-time-per-token': ms(t.timePerTokenMs),
    'x-prompt-tokens': String(outcome.final.inputTokens),
    'x-generated-tokens': String(outcome.final.details.generatedTokens),
    'x-served-model': prepared.model.spec.id,
    'x-attempts': String(outcome.attempt),
  };
}
