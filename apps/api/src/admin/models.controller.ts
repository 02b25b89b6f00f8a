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
import { DEFAULT_SCHEDULER_CONFIG, ValidationError } from '@switchyard/batching';
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
import { z } from 'zod';
import { ModelEntity } from '../registry/model.entity';
import { RequireScope } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { parseWith } from '../common/schema';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { ApiRoute, ApiRouteSpec } from '../docs/api-route';
import { validateDefaultParameters } from '../generation/validate-request';
import { RedisService } from '../redis/redis.service';
import { ModelRegistry, tokenLimits } from '../registry/model-registry.service';
import {
  adminErrors,
  CreateModelRequest,
  Model,
  ModelCommand,
  ModelParams,
  tokenLimitError,
  UpdateModelRequest,
} from './admin.schemas';

/** ONNX element types as ONNX Runtime names them, for the decoder signature check. */
const TENSOR_TYPES: Record<number, string> = { [TensorType.Float]: 'float32', [TensorType.Float16]: 'float16' };

/** The fields `applyLimits` reads, as both request schemas give them. */
type Limits = Pick<UpdateModelRequest, 'max_input_tokens' | 'max_total_tokens' | 'default_parameters'>;

/** A model directory as the API and the workers see it: a relative path is taken from the API's working directory. */
const absolute = (path: string) => (isAbsolute(path) ? path : resolve(path));

const json = <S extends z.ZodType>(schema: S) => ({ 'application/json': { schema } });

/** Load's and unload's spec: a control command to the workers, answered 202 before any worker acts on it. */
const commandRoute = (spec: Pick<ApiRouteSpec, 'summary' | 'description' | 'operationId'>): ApiRouteSpec => ({
  tag: 'admin',
  ...spec,
  params: ModelParams,
  responses: { 202: { description: 'Asked.', content: json(ModelCommand) } },
  errors: adminErrors('ModelNotFound', 'Validation'),
});

function view(row: ModelEntity): Model {
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
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
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
  @ApiRoute({
    tag: 'admin',
    summary: 'Register a model',
    description:
      'Adds a model to the registry. Its directory is read first (config, tokenizer, chat template and the ' +
      "graph's decoder signature, with no ONNX session in the API), so a directory that is not a servable model " +
      'is refused; its memory is estimated then. No worker loads it until a request or ' +
      '`POST /admin/models/{id}/load` asks. 422 for an unknown or invalid field; a directory that is not a ' +
      'servable model (one message whatever the cause, which goes to the server log); limits over the ' +
      "model's context, or `max_input_tokens` not below `max_total_tokens`; `default_parameters` TGI refuses; or " +
      '`fallbacks` that name the model itself, unregistered models, or would loop.',
    operationId: 'createModel',
    body: CreateModelRequest,
    responses: { 201: { description: 'The model, as registered.', content: json(Model) } },
    errors: adminErrors('BadRequest', 'PayloadTooLarge', 'ModelExists', 'Validation'),
  })
  async create(@Body() raw: unknown): Promise<Model> {
    const body = parseWith(CreateModelRequest, raw);
    const { id } = body;
    const path = absolute(body.path);
    if (await this.repo.existsBy({ id })) throw new ApiError(409, 'bad_request', `model "${id}" is already registered`);
    const checked = this.check(path, body.quantize ?? null);
    const row = this.repo.create({
      id,
      path,
      enabled: body.enabled ?? true,
      pinned: body.pinned ?? false,
      fallbacks: [],
      maxInputTokens: null,
      maxTotalTokens: null,
      defaultParameters: {},
      quantization: body.quantize ?? null,
      keepAliveMs: body.keep_alive ?? null,
      memoryBytes: checked.bytes,
    });
    this.applyLimits(row, body, checked.positions);
    row.fallbacks = await this.fallbacks(id, body.fallbacks ?? []);
    await this.repo.save(row);
    this.registry.invalidate(id);
    return view((await this.repo.findOneBy({ id }))!);
  }

  @Get()
  @ApiRoute({
    tag: 'admin',
    summary: 'List the models',
    description: 'Every registered model, enabled or not, by id.',
    operationId: 'listRegisteredModels',
    responses: { 200: { description: 'The models.', content: json(z.array(Model)) } },
    errors: adminErrors(),
  })
  async list(): Promise<Model[]> {
    return (await this.repo.find({ order: { id: 'ASC' } })).map(view);
  }

  @Get(':id')
  @ApiRoute({
    tag: 'admin',
    summary: 'Get a model',
    description: 'One model of the registry. 422 when the id is not a model id.',
    operationId: 'getModel',
    params: ModelParams,
    responses: { 200: { description: 'The model.', content: json(Model) } },
    errors: adminErrors('ModelNotFound', 'Validation'),
  })
  async get(@Param() params: unknown): Promise<Model> {
    return view(await this.find(params));
  }

  @Patch(':id')
  @ApiRoute({
    tag: 'admin',
    summary: 'Change a model',
    description:
      'Changes the fields given. A new `path` is loaded and checked as on registration; the limits are checked ' +
      "against the model's context. This API replica sees the change at once, the others within 2 seconds. A " +
      'worker that holds the model keeps what it loaded: unload and load it to apply a new `path`. 422 for an ' +
      'invalid id; an unknown field (`id` included) or an invalid one; a directory that is not usable; limits over ' +
      "the model's context or out of order; `default_parameters` TGI refuses; or `fallbacks` that name the model " +
      'itself, unregistered models, or would loop.',
    operationId: 'updateModel',
    params: ModelParams,
    body: UpdateModelRequest,
    responses: { 200: { description: 'The model, as changed.', content: json(Model) } },
    errors: adminErrors('BadRequest', 'PayloadTooLarge', 'ModelNotFound', 'Validation'),
  })
  async update(@Param() params: unknown, @Body() raw: unknown): Promise<Model> {
    const row = await this.find(params);
    const body = parseWith(UpdateModelRequest, raw);
    let positions: number;
    if (body.quantize !== undefined) row.quantization = body.quantize;
    if (body.keep_alive !== undefined) row.keepAliveMs = body.keep_alive;
    if (body.path !== undefined || body.quantize !== undefined) {
      if (body.path !== undefined) row.path = absolute(body.path);
      const checked = this.check(row.path, row.quantization);
      row.memoryBytes = checked.bytes;
      positions = checked.positions;
    } else {
      positions = this.positions(row.path);
    }
    row.enabled = body.enabled ?? row.enabled;
    row.pinned = body.pinned ?? row.pinned;
    this.applyLimits(row, body, positions);
    if (body.fallbacks !== undefined) row.fallbacks = await this.fallbacks(row.id, body.fallbacks ?? []);
    await this.repo.save(row);
    this.registry.invalidate(row.id);
    return view((await this.repo.findOneBy({ id: row.id }))!);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiRoute({
    tag: 'admin',
    summary: 'Remove a model',
    description:
      "Removes the model from the registry and tells the workers to unload it. Not the launcher's default model, " +
      'nor a model another names in its `fallbacks`. 422 when the id is not a model id.',
    operationId: 'deleteModel',
    params: ModelParams,
    responses: { 204: { description: 'Removed; the body is empty.' } },
    errors: adminErrors('ModelNotFound', 'ModelInUse', 'Validation'),
  })
  async remove(@Param() params: unknown): Promise<void> {
    const row = await this.find(params);
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
  @ApiRoute(
    commandRoute({
      summary: 'Load a model',
      description:
        'Asks the workers to load the model: the live worker with the most free memory loads it, unless one holds ' +
        'it already. The answer does not wait: `GET /admin/workers` shows it loading, then loaded. 422 for an ' +
        'invalid id, a disabled model, or one whose directory cannot be read.',
      operationId: 'loadModel',
    }),
  )
  async load(@Param() params: unknown): Promise<ModelCommand> {
    const row = await this.find(params);
    const model = await this.registry.resolve(row.id).catch((err: Error) => {
      throw ApiError.validation(`model "${row.id}" cannot be loaded: ${err.message}`);
    });
    if (!model) throw ApiError.validation(`model "${row.id}" is disabled: enable it first`);
    await this.redis.sendControl({ type: 'load', spec: model.spec, reason: 'request' });
    return { id: row.id, status: 'load requested' };
  }

  @Post(':id/unload')
  @HttpCode(202)
  @ApiRoute(
    commandRoute({
      summary: 'Unload a model',
      description:
        'Tells every live worker that holds the model to unload it. A later request loads it again. 422 when the ' +
        'id is not a model id.',
      operationId: 'unloadModel',
    }),
  )
  async unload(@Param() params: unknown): Promise<ModelCommand> {
    const row = await this.find(params);
    await this.redis.sendControl({ type: 'unload', model: row.id });
    return { id: row.id, status: 'unload requested' };
  }

  private async find(params: unknown): Promise<ModelEntity> {
    const { id } = parseWith(ModelParams, params);
    const row = await this.repo.findOneBy({ id });
    if (!row) throw new ApiError(404, 'model_not_found', `model "${id}" is not registered`);
    return row;
  }

  private positions(path: string): number {
    try {
      return loadModelConfig(path).maxPositions;
    } catch {
      return Number.MAX_SAFE_INTEGER; // the directory broke after it was saved: limits are checked when it loads
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

  private applyLimits(row: ModelEntity, body: Limits, positions: number): void {
    const { max_input_tokens: maxInput, max_total_tokens: maxTotal } = body;
    if (maxInput != null && maxInput > positions) {
      throw ApiError.validation(tokenLimitError('max_input_tokens', positions));
    }
    if (maxTotal != null && maxTotal > positions) {
      throw ApiError.validation(tokenLimitError('max_total_tokens', positions));
    }
    if (maxInput !== undefined) row.maxInputTokens = maxInput;
    if (maxTotal !== undefined) row.maxTotalTokens = maxTotal;
    if (row.maxInputTokens !== null && row.maxTotalTokens !== null && row.maxInputTokens >= row.maxTotalTokens) {
      throw ApiError.validation('`max_input_tokens` must be less than `max_total_tokens`');
    }
    if (body.default_parameters !== undefined) {
      row.defaultParameters = body.default_parameters;
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
