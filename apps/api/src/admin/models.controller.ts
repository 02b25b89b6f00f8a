/**
 * `/admin/models`: the registry. A model's directory is read and its graph's signature checked before it is
 * saved (no ONNX session in the API: see `check`), so a broken one gets a 422; the log says why. Default
 * parameters are checked as the requests that will carry them. Fallback lists may name only registered models
 * and may not loop. Load and unload go to the workers as control commands.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Body, Controller, Delete, Get, HttpCode, Inject, Logger, Param, Patch, Post } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';
import { DEFAULT_SCHEDULER_CONFIG, validateDefaultParameters, ValidationError } from '@switchyard/batching';
import { parseKeepAlive } from '@switchyard/protocol';
import {
  describeModel,
  formatBytes,
  loadModelConfig,
  OnnxModel,
  parseQuantize,
  poolBytes,
  readDecoderSignature,
  TensorType,
} from '@switchyard/models';
import { ModelEntity } from '../registry/model.entity';
import { RequireScope } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { RedisService } from '../redis/redis.service';
import { ModelRegistry, tokenLimits } from '../registry/model-registry.service';
import {
  Body as Input,
  boundedJson,
  JsonBounds,
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

/** ONNX element types as ONNX Runtime names them, for the decoder signature check. */
const TENSOR_TYPES: Record<number, string> = { [TensorType.Float]: 'float32', [TensorType.Float16]: 'float16' };

/** TGI's parameters are flat but for `stop`: this leaves room and no more. */
const DEFAULT_PARAMETERS_BOUNDS: JsonBounds = { maxDepth: 4, maxValues: 1000, maxChars: 10_000 };

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
    @InjectRepository(ModelEntity) private readonly repo: Repository<ModelEntity>,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly registry: ModelRegistry,
    private readonly redis: RedisService,
  ) {}

  @Post()
  @HttpCode(201)
  async create(@Body() raw: unknown) {
    const body = object(raw, FIELDS);
    const id = modelId(body.id);
    const path = this.path(body);
    if (await this.repo.existsBy({ id })) throw new ApiError(409, 'bad_request', `model "${id}" is already registered`);
    const quantize = this.quantize(body);
    const checked = this.check(path, quantize ?? null);
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
      const checked = this.check(row.path, row.quantization);
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
   * Reads the directory as the registry will (config, tokenizer, chat template, the graph's structure for the
   * memory estimate) and checks that the graph's declared inputs and outputs are a KV-cached decoder's. No ONNX
   * Runtime session is made in the API: ONNX Runtime parsing a graph an admin points at is the workers' risk, and a
   * graph that declares the right signature but will not run fails its load there (a load error, then 503 or a
   * fallback). Whatever fails, the client gets one answer and the log gets the reason, so the route cannot be used
   * to learn which paths exist on the API's host.
   */
  private check(path: string, quantize: string | null): { bytes: number; positions: number } {
    const started = Date.now();
    try {
      const described = describeModel(path, { quantize: parseQuantize(quantize ?? this.config.quantize) });
      const graph = OnnxModel.read(
        described.graphFile,
        readFileSync(described.graphFile),
        dirname(described.graphFile),
      );
      const pastType = graph.inputs.find((i) => i.name.startsWith('past_key_values.'))?.type;
      readDecoderSignature(
        described.graphFile,
        graph.inputs.map((i) => i.name),
        graph.outputs.map((o) => o.name),
        described.config.numLayers,
        pastType === undefined ? undefined : (TENSOR_TYPES[pastType] ?? `type ${pastType}`),
      );
      // with the workers' default token budget: the registry's figure is a guide, each worker counts its own
      const bytes = poolBytes(described.memory, {
        totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
        prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
      });
      this.logger.log(`checked ${path} in ${Date.now() - started} ms (${formatBytes(bytes)})`);
      return { bytes, positions: described.config.maxPositions };
    } catch (err) {
      this.logger.warn(`refused model directory ${JSON.stringify(path)}: ${(err as Error).message}`);
      throw ApiError.validation(
        '`path` is not a servable model directory (config.json, tokenizer.json and an ONNX decoder graph with a KV ' +
          "cache): the API's log says why",
      );
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
      if (params === null || typeof params !== 'object' || Array.isArray(params)) {
        throw ApiError.validation('`default_parameters` must be an object of TGI parameters');
      }
      // bounded before anything walks it: a deeply nested body would overflow the stack of whatever recursed
      boundedJson(params, 'default_parameters', DEFAULT_PARAMETERS_BOUNDS);
      row.defaultParameters = params as Record<string, unknown>;
    } else if (maxInput === undefined && maxTotal === undefined) {
      return; // neither the defaults nor the limits they are checked against change
    }
    // Checked as a request carrying them is (max_new_tokens included), within the model's limits as the registry
    // computes them: a value saved here must not fail every request to the model.
    const { maxInputTokens, maxTotalTokens } = tokenLimits(row, positions, this.config);
    try {
      validateDefaultParameters(row.defaultParameters, {
        maxStopSequences: this.config.maxStopSequences,
        maxBestOf: this.config.maxBestOf,
        maxTopNTokens: this.config.maxTopNTokens,
        maxInputTokens,
        maxTotalTokens,
      });
    } catch (err) {
      if (err instanceof ValidationError) throw ApiError.validation(`\`default_parameters\`: ${err.message}`);
      throw err;
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
