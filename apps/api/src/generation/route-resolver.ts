/**
 * Where a generation request may run: the model id it names (TGI's defaults), whether its key may use a model, the
 * candidates in order (the model, then its fallbacks: the client's own list or the registry's), and what the
 * registry says of each one the fallback chain reaches.
 */
import { isValidId } from '@switchyard/protocol';
import { ModelError } from '@switchyard/models';
import type { Principal } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import { MAX_CANDIDATES } from '../common/schema';
import type { ModelRegistry, ResolvedModel } from '../registry/model-registry.service';
import type { Lookup } from './fallback-chain';

export class RouteResolver {
  constructor(private readonly registry: Pick<ModelRegistry, 'defaultModel' | 'record' | 'resolve'>) {}

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

  checkAllowed(principal: Principal, id: string): void {
    if (!this.allowed(principal, id)) {
      throw new ApiError(403, 'model_not_allowed', `this key may not use model "${id}"`);
    }
  }

  allowed(principal: Principal, id: string): boolean {
    return principal.allowedModels === null || principal.allowedModels.includes(id);
  }

  /**
   * The requested model, then its fallbacks (the client's own list, or the registry's), depth first, once each.
   * Fallbacks the key may not use are left out, so they are never tried, logged or metered: the last usable
   * model's error stands.
   */
  async candidates(requested: string, own: readonly string[] | null | undefined, principal: Principal) {
    const out: string[] = [];
    const visit = async (id: string, list: readonly string[] | null) => {
      if (out.includes(id) || out.length >= MAX_CANDIDATES) return;
      out.push(id);
      const fallbacks = list ?? (await this.registry.record(id))?.fallbacks ?? [];
      for (const f of fallbacks) await visit(f, null);
    };
    await visit(requested, own ?? null); // the request's schema bounds its own list
    return out.filter((id, i) => i === 0 || this.allowed(principal, id));
  }

  /** What the registry says of a model (a directory that cannot be read throws its `ModelError`). */
  async lookup(id: string): Promise<Lookup> {
    const row = await this.registry.record(id);
    if (!row) return { state: 'absent' };
    if (!row.enabled) return { state: 'disabled' };
    const model = await this.registry.resolve(id);
    return model ? { state: 'ready', model } : { state: 'disabled' }; // disabled between the two reads
  }
}
