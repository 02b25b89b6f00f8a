/**
 * The path every generation route shares: pick the model, validate and tokenize as TGI does, take an in-flight
 * slot, run it on the workers, and record TGI's request metrics. Routes only translate their own formats.
 */
import { Inject, Injectable } from '@nestjs/common';
import { performance } from 'node:perf_hooks';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { GenerationParameters, isValidId, validateRequest, ValidationError } from '@switchyard/batching';
import { ModelError } from '@switchyard/models';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { ApiMetrics } from '../metrics/api-metrics';
import { ModelRegistry, ResolvedModel } from '../registry/model-registry.service';
import { GenerationOutcome, GenerationService, RunOptions } from './generation.service';

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

@Injectable()
export class InferenceService {
  constructor(
    private readonly registry: ModelRegistry,
    private readonly generation: GenerationService,
    private readonly metrics: ApiMetrics,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  /** The request id the middleware gave this request. */
  requestId(req: Request): string {
    return (req as Request & { requestId?: string }).requestId ?? randomUUID();
  }

  /** The model a request names (or the default), enabled in the registry; 404 otherwise. */
  async model(name: unknown): Promise<ResolvedModel> {
    // TGI ignores `model`; @huggingface/inference sends the endpoint's URL there: both mean the default model
    const isDefault =
      name === undefined ||
      name === null ||
      name === '' ||
      name === 'tgi' ||
      (typeof name === 'string' && /^https?:\/\//.test(name));
    const id = isDefault ? this.registry.defaultModel : name;
    if (typeof id !== 'string' || !isValidId(id)) throw ApiError.validation('`model` must be a model id');
    let model: ResolvedModel | null;
    try {
      model = await this.registry.resolve(id);
    } catch (err) {
      if (err instanceof ModelError) {
        throw ApiError.unavailable(`model ${id} cannot be served: ${err.message}`, 'cannot_place');
      }
      throw err;
    }
    if (!model) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered or not enabled`);
    return model;
  }

  /** TGI validation of `inputs` and `parameters` (with the model's defaults under them). */
  prepare(
    req: Request,
    model: ResolvedModel,
    inputs: unknown,
    rawParameters: unknown,
    options: { stream: boolean },
  ): PreparedRequest {
    const arrived = performance.now();
    const defaults = model.record.defaultParameters ?? {};
    const merged =
      rawParameters && typeof rawParameters === 'object' && !Array.isArray(rawParameters)
        ? { ...defaults, ...(rawParameters as Record<string, unknown>) }
        : rawParameters === undefined || rawParameters === null
          ? { ...defaults }
          : rawParameters;
    try {
      const { inputIds, parameters } = validateRequest(
        inputs,
        merged,
        (text) => model.description.tokenizer.encode(text),
        model.limits,
        options,
      );
      const wantDetails = (merged as Record<string, unknown>).details === true;
      const prepared: PreparedRequest = {
        requestId: this.requestId(req),
        model,
        inputIds,
        inputText: inputs as string,
        parameters,
        wantDetails,
        computeType: this.config.executionProvider,
        arrived,
        validationMs: performance.now() - arrived,
      };
      this.metrics.validationDuration.observe(prepared.validationMs / 1000);
      this.metrics.inputLength.observe(inputIds.length);
      this.metrics.maxNewTokens.observe(parameters.maxNewTokens);
      return prepared;
    } catch (err) {
      if (err instanceof ValidationError) {
        this.metrics.failure.inc({ err: 'validation' });
        throw ApiError.validation(err.message);
      }
      throw err;
    }
  }

  /**
   * Runs a prepared request within the in-flight cap. The client's disconnect (the response closing before it
   * ended) cancels it.
   */
  async execute(
    prepared: PreparedRequest,
    res: Response,
    options: Omit<RunOptions, 'signal'> = {},
  ): Promise<{ outcome: GenerationOutcome; timings: Timings }> {
    this.metrics.admit();
    this.metrics.count.inc();
    const controller = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) controller.abort();
    };
    res.on('close', onClose);
    try {
      const outcome = await this.generation.run(prepared, { ...options, signal: controller.signal });
      const timings = this.timings(prepared, outcome);
      this.metrics.success.inc();
      this.metrics.duration.observe(timings.totalMs / 1000);
      this.metrics.queueDuration.observe(timings.queueMs / 1000);
      this.metrics.inferenceDuration.observe(timings.inferenceMs / 1000);
      this.metrics.timePerToken.observe(timings.timePerTokenMs / 1000);
      this.metrics.generatedTokens.observe(outcome.final.details.generatedTokens);
      return { outcome, timings };
    } catch (err) {
      this.metrics.failure.inc({ err: err instanceof ApiError ? err.errorType : 'internal' });
      throw err;
    } finally {
      res.off('close', onClose);
      this.metrics.release();
    }
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
export function timingHeaders(
  prepared: PreparedRequest,
  outcome: GenerationOutcome,
  t: Timings,
): Record<string, string> {
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
