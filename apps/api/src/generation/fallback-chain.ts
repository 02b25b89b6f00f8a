/**
 * The fallback chain: a request's model, then its fallbacks in order, each tried until one serves it. A model is
 * passed over when it is not registered (a fallback only: the requested one answers 404), disabled, its directory
 * cannot be read, its queue waits too long on every worker (not for the last one, which is tried all the same), or
 * it fails with a retryable error before any token reached the client. Each move to the next model is reported
 * (`onFallback`: a log line and a metric); when none is left, the last model's error stands.
 */
import { ModelError } from '@switchyard/models';
import { ApiError } from '../common/api-error';
import type { ResolvedModel } from '../registry/model-registry.service';

export type FallbackReason = 'disabled' | 'load_failed' | 'overloaded' | 'generation';

/** What the registry says of a model id. A directory that cannot be read throws its `ModelError`. */
export type Lookup = { state: 'absent' } | { state: 'disabled' } | { state: 'ready'; model: ResolvedModel };

export interface ChainSteps<T> {
  lookup(id: string): Promise<Lookup>;
  /** Whether the model's queue waits past the limit on every worker that holds it. */
  overloaded(id: string): Promise<boolean>;
  /** Runs the request on the model. */
  attempt(model: ResolvedModel): Promise<T>;
  /** Whether the attempt under way has sent a token to the client (then it cannot move on). */
  tokensSent(): boolean;
  onFallback(from: string, to: string, reason: FallbackReason, error: ApiError): void;
}

/** Error types after which the next model in the list is tried, if no token was sent yet. */
const RETRYABLE = new Set(['generation', 'cannot_place', 'unhealthy']);

export async function runChain<T>(candidates: readonly string[], steps: ChainSteps<T>): Promise<T> {
  for (let i = 0; i < candidates.length; i++) {
    const id = candidates[i];
    const last = i === candidates.length - 1;
    /** Moves on to the next model, or ends the request with `error` when this was the last. */
    const next = (reason: FallbackReason, error: ApiError): void => {
      if (last) throw error;
      steps.onFallback(id, candidates[i + 1], reason, error);
    };
    let found: Lookup;
    try {
      found = await steps.lookup(id);
    } catch (err) {
      if (!(err instanceof ModelError)) throw err;
      next('load_failed', ApiError.unavailable(`model ${id} cannot be served: ${err.message}`, 'cannot_place'));
      continue;
    }
    if (found.state === 'absent') {
      if (i === 0) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered`);
      next('load_failed', ApiError.unavailable(`fallback model "${id}" is not registered`, 'cannot_place'));
      continue;
    }
    if (found.state === 'disabled') {
      next('disabled', ApiError.unavailable(`model "${id}" is disabled`, 'unhealthy'));
      continue;
    }
    if (!last && (await steps.overloaded(id))) {
      next('overloaded', ApiError.overloaded(`model ${id} is overloaded`));
      continue;
    }
    try {
      return await steps.attempt(found.model);
    } catch (err) {
      if (!(err instanceof ApiError) || steps.tokensSent() || !RETRYABLE.has(err.errorType)) throw err;
      next(err.errorType === 'generation' ? 'generation' : 'load_failed', err);
    }
  }
  throw ApiError.unavailable('no model could serve the request');
}
