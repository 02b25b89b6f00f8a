/**
 * The path every generation route shares. For the model a request names, and then its fallbacks in order: check
 * the key's allowlist, skip a model that is disabled, cannot load or is overloaded, validate and tokenize as TGI
 * does (with that model's tokenizer), take an in-flight slot and the key's rate limits, and run it on the
 * workers; a generation error before the first token moves on to the next model too. Every request leaves one
 * usage record. Routes only translate their own formats, through `build`.
 */
import { Inject, Injectable, Logger } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { GenerationParameters, TokenEvent, ValidationError } from '@switchyard/batching';
import { validateRequest } from './validate-request';
import { parseWith } from '../common/schema';
import type { z } from 'zod';
import { isValidId, parseKeepAlive } from '@switchyard/protocol';
import { ModelError } from '@switchyard/models';
import type { Principal } from '../auth/api-keys.service';
import { principalOf } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { RateLimiter } from '../limits/rate-limiter.service';
import { ApiMetrics } from '../metrics/api-metrics';
import { WorkerDirectory } from '../redis/worker-directory.service';
import { ModelRegistry, ResolvedModel } from '../registry/model-registry.service';
import { UsageService } from '../usage/usage.service';
import { GenerationOutcome, GenerationService } from './generation.service';
import { Lookup, runChain } from './fallback-chain';
import { TokenizerThread } from './tokenizer-thread';

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

export interface Timings {
  totalMs: number;
  validationMs: number;
  queueMs: number;
  inferenceMs: number;
  timePerTokenMs: number;
}

export interface ServeRequest {
  /** The route, for the usage record (`/generate`, `/v1/chat/completions`, ...). */
  route: string;
  /** The model the client named (undefined: the default). */
  model: unknown;
  /** The client's own fallback list, replacing the model's. */
  fallbacks?: unknown;
  /** Ollama's `keep_alive`: how long the model stays resident once idle ("5m", seconds, -1, 0). */
  keepAlive?: unknown;
  stream: boolean;
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

/** Models one request may try: its own and its fallbacks. */
export const MAX_CANDIDATES = 8;

@Injectable()
export class InferenceService {
  private readonly logger = new Logger('Inference');

  constructor(
    private readonly registry: ModelRegistry,
    private readonly generation: GenerationService,
    private readonly metrics: ApiMetrics,
    private readonly limiter: RateLimiter,
    private readonly usage: UsageService,
    private readonly workers: WorkerDirectory,
    private readonly tokenizers: TokenizerThread,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** The request id the middleware gave this request. */
  requestId(req: Request): string {
    return (req as Request & { requestId?: string }).requestId ?? randomUUID();
  }

  /** The id a request names: TGI ignores `model`, and @huggingface/inference sends the endpoint's URL there. */
  modelId(name: unknown): string {
    const isDefault =
      name === undefined ||
      name === null ||
      name === '' ||
      name === 'tgi' ||
      (typeof name === 'string' && /^https?:\/\//.test(name));
    if (isDefault) return this.registry.defaultModel;
    if (typeof name !== 'string' || !isValidId(name)) throw ApiError.validation('`model` must be a model id');
    return name;
  }

  /**
   * A generation request's body parsed by its schema. One that fails still leaves its usage row (status 422), as
   * every request to a generation route does, whether it was served or not.
   */
  parse<S extends z.ZodType>(req: Request, route: string, schema: S, raw: unknown): z.output<S> {
    try {
      return parseWith(schema, raw);
    } catch (err) {
      const failure = err as ApiError;
      this.metrics.failure.inc({ err: failure.errorType });
      let requestedModel: string | null = null;
      try {
        requestedModel = this.modelId((raw as { model?: unknown } | null)?.model);
      } catch {
        // not a model id: the row names none
      }
      this.usage.record({
        requestId: this.requestId(req),
        keyId: principalOf(req).keyId,
        requestedModel,
        servedModel: null,
        route,
        promptTokens: 0,
        generatedTokens: 0,
        finishReason: null,
        status: failure.status,
        errorType: failure.errorType,
        queueMs: null,
        ttftMs: null,
        totalMs: 0,
        createdAt: new Date(),
      });
      throw err;
    }
  }

  /** An enabled model by id (for /tokenize and /info); 404 when there is none. */
  async model(name: unknown, principal?: Principal): Promise<ResolvedModel> {
    const id = this.modelId(name);
    if (principal) this.checkAllowed(principal, id);
    let model: ResolvedModel | null;
    try {
      model = await this.registry.resolve(id);
    } catch (err) {
      if (err instanceof ModelError)
        throw ApiError.unavailable(`model ${id} cannot be served: ${err.message}`, 'cannot_place');
      throw err;
    }
    if (!model) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered or not enabled`);
    return model;
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
    inputs: unknown,
    rawParameters: unknown,
    options: { stream: boolean },
  ): Promise<PreparedRequest> {
    const arrived = performance.now();
    const defaults = model.record.defaultParameters ?? {};
    const merged =
      rawParameters && typeof rawParameters === 'object' && !Array.isArray(rawParameters)
        ? { ...defaults, ...(rawParameters as Record<string, unknown>) }
        : rawParameters === undefined || rawParameters === null
          ? { ...defaults }
          : rawParameters;
    let ids: number[] | null = null;
    if (typeof inputs === 'string' && inputs.length > 0) {
      const truncate = (merged as Record<string, unknown> | null)?.truncate;
      ids = await this.promptIds(model, inputs, truncate !== undefined && truncate !== null);
    }
    try {
      const { inputIds, parameters } = validateRequest(
        inputs,
        merged,
        (text) => (ids !== null && text === inputs ? ids : model.description.tokenizer.encode(text)),
        model.limits,
        options,
      );
      return {
        requestId: this.requestId(req),
        model,
        inputIds,
        inputText: inputs as string,
        parameters,
        wantDetails: (merged as Record<string, unknown>).details === true,
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
  async serve(req: Request, res: Response, request: ServeRequest): Promise<Served> {
    const started = performance.now();
    const principal = principalOf(req);
    const requestId = this.requestId(req);
    let requested: string | null = null;
    let prepared = null as PreparedRequest | null;
    let outcome: GenerationOutcome | null = null;
    let timings: Timings | null = null;
    let firstTokenAt = 0;
    let failure: ApiError | null = null;
    let admitted = false;
    try {
      requested = this.modelId(request.model);
      let keepAliveMs: number | undefined;
      try {
        keepAliveMs = parseKeepAlive(request.keepAlive);
      } catch (err) {
        throw ApiError.validation((err as Error).message);
      }
      this.checkAllowed(principal, requested);
      this.metrics.admit();
      admitted = true;
      this.metrics.count.inc();
      // fallbacks the key may not use are never tried, logged or metered: the last usable model's error stands
      const candidates = (await this.candidates(requested, request.fallbacks)).filter(
        (id, i) => i === 0 || this.allowed(principal, id),
      );
      const controller = new AbortController();
      const onClose = () => {
        if (!res.writableFinished) controller.abort();
      };
      res.on('close', onClose);
      // both are set inside the chain's attempts (a cast, so that TypeScript does not narrow them to null here)
      let reservation = null as { settle(tokens: number): void } | null;
      let streamed = 0;
      try {
        outcome = await runChain(candidates, {
          lookup: (id) => this.lookup(id),
          overloaded: (id) => this.overloaded(id),
          tokensSent: () => streamed > 0,
          onFallback: (from, to, reason, error) => {
            this.logger.warn(`${requestId}: ${from} -> ${to} (${reason}: ${error.message})`);
            this.metrics.fallbacks.inc({ from, to, reason });
          },
          attempt: async (model) => {
            const current = await request.build(model);
            prepared = current;
            this.metrics.validationDuration.observe(current.validationMs / 1000);
            reservation ??= await this.limiter.reserve(
              principal,
              current.inputIds.length + current.parameters.maxNewTokens,
            );
            streamed = 0;
            return this.generation.run(current, {
              signal: controller.signal,
              keepAliveMs,
              onToken: request.onToken
                ? (event) => {
                    if (streamed++ === 0) firstTokenAt = performance.now();
                    request.onToken!(event, current);
                  }
                : undefined,
            });
          },
        });
      } finally {
        res.off('close', onClose);
        reservation?.settle(outcome ? outcome.final.inputTokens + outcome.final.details.generatedTokens : 0);
      }
      if (!outcome || !prepared) throw ApiError.unavailable('no model could serve the request');
      timings = this.timings(prepared, outcome);
      this.observe(prepared, outcome, timings);
      return { prepared, outcome, timings };
    } catch (err) {
      failure = err instanceof ApiError ? err : new ApiError(500, 'internal', (err as Error).message);
      this.metrics.failure.inc({ err: failure.errorType });
      throw err;
    } finally {
      if (admitted) this.metrics.release();
      const final = outcome?.final;
      this.usage.record({
        requestId,
        keyId: principal.keyId,
        requestedModel: requested,
        servedModel: outcome ? prepared!.model.spec.id : null,
        route: request.route,
        promptTokens: final?.inputTokens ?? prepared?.inputIds.length ?? 0,
        generatedTokens: final?.details.generatedTokens ?? 0,
        finishReason: final?.details.finishReason ?? null,
        status: failure ? failure.status : 200,
        errorType: failure?.errorType ?? null,
        queueMs: timings?.queueMs ?? null,
        ttftMs: firstTokenAt > 0 ? firstTokenAt - started : null,
        totalMs: performance.now() - started,
        createdAt: new Date(),
      });
    }
  }

  /** What the registry says of a model (a directory that cannot be read throws its `ModelError`). */
  private async lookup(id: string): Promise<Lookup> {
    const row = await this.registry.record(id);
    if (!row) return { state: 'absent' };
    if (!row.enabled) return { state: 'disabled' };
    const model = await this.registry.resolve(id);
    return model ? { state: 'ready', model } : { state: 'disabled' }; // disabled between the two reads
  }

  private checkAllowed(principal: Principal, id: string): void {
    if (!this.allowed(principal, id)) {
      throw new ApiError(403, 'model_not_allowed', `this key may not use model "${id}"`);
    }
  }

  private allowed(principal: Principal, id: string): boolean {
    return principal.allowedModels === null || principal.allowedModels.includes(id);
  }

  /** The requested model, then its fallbacks (the client's own list, or the registry's), depth first, once each. */
  private async candidates(requested: string, own: unknown): Promise<string[]> {
    let first: string[] | null = null;
    if (own !== undefined && own !== null) {
      if (
        !Array.isArray(own) ||
        own.length > MAX_CANDIDATES ||
        !own.every((m) => typeof m === 'string' && isValidId(m))
      ) {
        throw ApiError.validation(`\`fallbacks\` must be a list of at most ${MAX_CANDIDATES} model ids`);
      }
      first = own as string[];
    }
    const out: string[] = [];
    const visit = async (id: string, list: string[] | null) => {
      if (out.includes(id) || out.length >= MAX_CANDIDATES) return;
      out.push(id);
      const fallbacks = list ?? (await this.registry.record(id))?.fallbacks ?? [];
      for (const f of fallbacks) await visit(f, null);
    };
    await visit(requested, first);
    return out;
  }

  /** A model's queue waits too long on every worker that holds it. */
  private async overloaded(id: string): Promise<boolean> {
    const { loaded } = await this.workers.holders(id);
    if (loaded.length === 0) return false;
    return loaded.every(
      (w) => (w.models.find((m) => m.id === id)?.oldestQueuedMs ?? 0) > this.config.fallbackQueueWaitMs,
    );
  }

  private observe(prepared: PreparedRequest, outcome: GenerationOutcome, timings: Timings): void {
    this.metrics.success.inc();
    this.metrics.duration.observe(timings.totalMs / 1000);
    this.metrics.queueDuration.observe(timings.queueMs / 1000);
    this.metrics.inferenceDuration.observe(timings.inferenceMs / 1000);
    this.metrics.timePerToken.observe(timings.timePerTokenMs / 1000);
    this.metrics.generatedTokens.observe(outcome.final.details.generatedTokens);
    this.metrics.inputLength.observe(prepared.inputIds.length);
    this.metrics.maxNewTokens.observe(prepared.parameters.maxNewTokens);
  }

  private timings(prepared: PreparedRequest, outcome: GenerationOutcome): Timings {
    const { final } = outcome;
    const totalMs = performance.now() - prepared.arrived;
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
