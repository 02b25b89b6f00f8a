/**
 * `/admin/models`: the registry. A model is checked with the model runtime (its directory loaded, ONNX session
 * included) before it is saved, so a broken one gets a 422 that says why. Fallback lists may name only
 * registered models and may not loop. Load and unload go to the workers as control commands.
 */
import { isAbsolute, resolve } from 'node:path';
import { Body, Controller, Delete, Get, HttpCode, Inject, Logger, Param, Patch, Post } from '@nestjs/common';
import { DataSource } from 'typeorm';
import {
  DEFAULT_SCHEDULER_CONFIG,
  DEFAULT_VALIDATION_LIMITS,
  parseKeepAlive,
  validateRequest,
  ValidationError,
} from '@switchyard/batching';
import {
  estimateModelMemory,
  formatBytes,
  loadModel,
  loadModelConfig,
  ModelEntity,
  ModelError,
  parseQuantize,
  poolBytes,
} from '@switchyard/models';
import { RequireScope } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { DATA_SOURCE } from '../database/database.providers';
import { RedisService } from '../redis/redis.service';
import { ModelRegistry } from '../registry/model-registry.service';
import {
  Body as Input,
  modelId,
  object,
  optionalBool,
  optionalIdList,
  optionalPositiveInt,
  string,
} from './admin-input';

const FIELDS = [
  'id',
  'path',
  'enabled',
  'pinned',
  'fallbacks',
  'max_input_tokens',
  'max_total_tokens',
  'default_parameters',
  'quantize',
  'keep_alive',
] as const;

function view(row: ModelEntity) {
  return {
    id: row.id,
    path: row.path,
    enabled: row.enabled,
    pinned: row.pinned,
    fallbacks: row.fallbacks,
    max_input_tokens: row.maxInputTokens,
    max_total_tokens: row.maxTotalTokens,
    default_parameters: row.defaultParameters,
    quantize: row.quantization,
    // seconds, as Ollama's numbers are; -1 and 0 as they are; null: the workers' --keep-alive
    keep_alive: row.keepAliveMs === null ? null : row.keepAliveMs < 0 ? -1 : row.keepAliveMs / 1000,
    memory_bytes: row.memoryBytes,
    created_at: row.createdAt,
    updated_at: row.updatedAt,
  };
}

@RequireScope('admin')
@Controller('admin/models')
export class ModelsAdminController {
  private readonly logger = new Logger('AdminModels');

  constructor(
    @Inject(DATA_SOURCE) private readonly dataSource: DataSource,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly registry: ModelRegistry,
    private readonly redis: RedisService,
  ) {}

  private get repo() {
    return this.dataSource.getRepository(ModelEntity);
  }

  @Post()
  @HttpCode(201)
  async create(@Body() raw: unknown) {
    const body = object(raw, FIELDS);
    const id = modelId(body.id);
    const path = this.path(body);
    if (await this.repo.existsBy({ id })) throw new ApiError(409, 'bad_request', `model "${id}" is already registered`);
    const quantize = this.quantize(body);
    const checked = await this.check(path, quantize ?? null);
    const row = this.repo.create({
      id,
      path,
      enabled: optionalBool(body, 'enabled') ?? true,
      pinned: optionalBool(body, 'pinned') ?? false,
      fallbacks: [],
      maxInputTokens: null,
      maxTotalTokens: null,
      defaultParameters: {},
      quantization: quantize ?? null,
      keepAliveMs: this.keepAlive(body) ?? null,
      memoryBytes: checked.bytes,
    });
    this.applyLimits(row, body, checked.positions);
    row.fallbacks = await this.fallbacks(id, optionalIdList(body, 'fallbacks') ?? []);
    await this.repo.save(row);
    this.registry.invalidate(id);
    return view((await this.repo.findOneBy({ id }))!);
  }

  @Get()
  async list() {
    return (await this.repo.find({ order: { id: 'ASC' } })).map(view);
  }

  @Get(':id')
  async get(@Param('id') id: string) {
    return view(await this.find(id));
  }

  @Patch(':id')
  async update(@Param('id') id: string, @Body() raw: unknown) {
    const row = await this.find(id);
    const body = object(
      raw,
      FIELDS.filter((f) => f !== 'id'),
    );
    let positions: number;
    const quantize = this.quantize(body);
    if (quantize !== undefined) row.quantization = quantize;
    const keepAlive = this.keepAlive(body);
    if (keepAlive !== undefined) row.keepAliveMs = keepAlive;
    if (body.path !== undefined || quantize !== undefined) {
      if (body.path !== undefined) row.path = this.path(body);
      const checked = await this.check(row.path, row.quantization);
      row.memoryBytes = checked.bytes;
      positions = checked.positions;
    } else {
      positions = this.positions(row.path);
    }
    row.enabled = optionalBool(body, 'enabled') ?? row.enabled;
    row.pinned = optionalBool(body, 'pinned') ?? row.pinned;
    this.applyLimits(row, body, positions);
    const fallbacks = optionalIdList(body, 'fallbacks');
    if (fallbacks !== undefined) row.fallbacks = await this.fallbacks(row.id, fallbacks ?? []);
    await this.repo.save(row);
    this.registry.invalidate(row.id);
    return view((await this.repo.findOneBy({ id: row.id }))!);
  }

  @Delete(':id')
  @HttpCode(204)
  async remove(@Param('id') id: string): Promise<void> {
    const row = await this.find(id);
    if (row.id === this.config.modelName) {
      throw new ApiError(409, 'bad_request', `model "${row.id}" is the launcher's default model: disable it instead`);
    }
    const users = (await this.repo.find()).filter((m) => m.fallbacks.includes(row.id)).map((m) => m.id);
    if (users.length > 0) {
      throw new ApiError(
        409,
        'bad_request',
        `model "${row.id}" is a fallback of ${users.join(', ')}: change those first`,
      );
    }
    await this.repo.delete({ id: row.id });
    this.registry.invalidate(row.id);
    await this.redis.sendControl({ type: 'unload', model: row.id });
  }

  @Post(':id/load')
  @HttpCode(202)
  async load(@Param('id') id: string) {
    const row = await this.find(id);
    const model = await this.registry.resolve(row.id).catch((err: Error) => {
      throw ApiError.validation(`model "${row.id}" cannot be loaded: ${err.message}`);
    });
    if (!model) throw ApiError.validation(`model "${row.id}" is disabled: enable it first`);
    await this.redis.sendControl({ type: 'load', spec: model.spec, reason: 'request' });
    return { id: row.id, status: 'load requested' };
  }

  @Post(':id/unload')
  @HttpCode(202)
  async unload(@Param('id') id: string) {
    const row = await this.find(id);
    await this.redis.sendControl({ type: 'unload', model: row.id });
    return { id: row.id, status: 'unload requested' };
  }

  private async find(id: string): Promise<ModelEntity> {
    const row = await this.repo.findOneBy({ id: modelId(id) });
    if (!row) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered`);
    return row;
  }

  private path(body: Input): string {
    const raw = string(body, 'path', 4096);
    if (raw.includes('\0')) throw ApiError.validation('`path` must be a directory path');
    return isAbsolute(raw) ? raw : resolve(raw);
  }

  private positions(path: string): number {
    try {
      return loadModelConfig(path).maxPositions;
    } catch {
      return Number.MAX_SAFE_INTEGER; // the directory broke after it was saved: limits are checked when it loads
    }
  }

  /** `keep_alive`: Ollama's duration or seconds (-1 keeps, 0 unloads once idle), null for the workers'; undefined when absent. */
  private keepAlive(body: Input): number | null | undefined {
    if (body.keep_alive === null) return null;
    try {
      return parseKeepAlive(body.keep_alive);
    } catch (err) {
      throw ApiError.validation((err as Error).message);
    }
  }

  /** `quantize`: none, q8, q4, or null for the workers' --quantize; undefined when the body leaves it out. */
  private quantize(body: Input): string | null | undefined {
    const raw = body.quantize;
    if (raw === undefined || raw === null) return raw;
    if (typeof raw !== 'string') throw ApiError.validation('`quantize` must be none, q8, q4 or null');
    try {
      return parseQuantize(raw);
    } catch (err) {
      throw ApiError.validation(`\`quantize\`: ${(err as Error).message}`);
    }
  }

  /**
   * Loads the model as a worker would (session included, as exported: quantizing is the workers' work, off this
   * process's event loop) and releases it: a broken model is refused here. Its memory is estimated as it will be
   * served, quantized or not.
   */
  private async check(path: string, quantize: string | null): Promise<{ bytes: number; positions: number }> {
    const started = Date.now();
    try {
      const model = await loadModel(path, { intraOpThreads: 1 });
      await model.release();
      const memory = estimateModelMemory(path, { quantize: parseQuantize(quantize ?? this.config.quantize) });
      // with the workers' default token budget: the registry's figure is a guide, each worker counts its own
      const bytes = poolBytes(memory, {
        totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
        prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
      });
      this.logger.log(`checked ${path} in ${Date.now() - started} ms (${formatBytes(bytes)})`);
      return { bytes, positions: model.config.maxPositions };
    } catch (err) {
      if (err instanceof ModelError) throw ApiError.validation(`the model directory is not usable: ${err.message}`);
      throw ApiError.validation(`the model directory is not usable: ${(err as Error).message}`);
    }
  }

  private applyLimits(row: ModelEntity, body: Input, positions: number): void {
    const maxInput = optionalPositiveInt(body, 'max_input_tokens', positions);
    const maxTotal = optionalPositiveInt(body, 'max_total_tokens', positions);
    if (maxInput !== undefined) row.maxInputTokens = maxInput;
    if (maxTotal !== undefined) row.maxTotalTokens = maxTotal;
    if (row.maxInputTokens !== null && row.maxTotalTokens !== null && row.maxInputTokens >= row.maxTotalTokens) {
      throw ApiError.validation('`max_input_tokens` must be less than `max_total_tokens`');
    }
    if (body.default_parameters !== undefined) {
      const params = body.default_parameters;
      if (
        params === null ||
        typeof params !== 'object' ||
        Array.isArray(params) ||
        JSON.stringify(params).length > 10_000
      ) {
        throw ApiError.validation('`default_parameters` must be an object of TGI parameters');
      }
      try {
        // checked as TGI would check a request that carries them
        validateRequest('x', { ...params, max_new_tokens: 1 }, () => [1], {
          ...DEFAULT_VALIDATION_LIMITS,
          maxInputTokens: positions - 1,
          maxTotalTokens: positions,
        });
      } catch (err) {
        if (err instanceof ValidationError) throw ApiError.validation(`\`default_parameters\`: ${err.message}`);
        throw err;
      }
      row.defaultParameters = params as Record<string, unknown>;
    }
  }

  /** Checks a fallback list: registered models only, not itself, and no loop through the others' lists. */
  private async fallbacks(id: string, list: string[]): Promise<string[]> {
    if (list.includes(id)) throw ApiError.validation(`\`fallbacks\` cannot name the model itself`);
    const rows = await this.repo.find();
    const graph = new Map(rows.map((r) => [r.id, r.fallbacks]));
    const unknown = list.filter((f) => !graph.has(f));
    if (unknown.length > 0)
      throw ApiError.validation(`\`fallbacks\` names unregistered model(s): ${unknown.join(', ')}`);
    graph.set(id, list);
    const seen = new Set<string>();
    const walk = (node: string, path: string[]): void => {
      for (const next of graph.get(node) ?? []) {
        if (next === id) throw ApiError.validation(`\`fallbacks\` would loop: ${[...path, next].join(' -> ')}`);
        if (seen.has(next)) continue;
        seen.add(next);
        walk(next, [...path, next]);
      }
    };
    walk(id, [id]);
    return list;
  }
}
