/**
 * Resolves a model id to what the API needs to serve it: the registry row (Postgres, cached briefly), the
 * model's description (tokenizer, chat template, config; read from its directory once), its validation limits
 * and the spec that load commands carry.
 */
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, In, Repository } from 'typeorm';
import { DEFAULT_VALIDATION_LIMITS, ValidationLimits } from '@switchyard/batching';
import { ModelSpec } from '@switchyard/protocol';
import { describeModel, ModelDescription } from '@switchyard/models';
import { ModelEntity } from './model.entity';
import { LastGoodCache } from '../common/last-good-cache';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { dependencyState } from '../health/dependencies';
import { ApiMetrics } from '../metrics/api-metrics';

export interface ResolvedModel {
  record: ModelEntity;
  description: ModelDescription;
  limits: ValidationLimits;
  spec: ModelSpec;
}

/** How long a registry row is trusted before it is read again. */
const CACHE_MS = 2000;
/**
 * How long after that an enabled row is still answered at once while it is read again behind the request (see
 * `LastGoodCache`). An absent or disabled row is read before answering, so a model registered on another replica is
 * found within CACHE_MS; a change made on another replica (disabled, deleted, a new path) shows within
 * CACHE_MS + STALE_MS; one made on this replica, at once.
 */
const STALE_MS = 2000;
/** How long a row read is still answered while Postgres cannot be read (absent rows included). */
const LAST_GOOD_MS = 5 * 60_000;
/** Models served within this long have their rows read again every CACHE_MS in the background. */
const HOT_MS = 60_000;

@Injectable()
export class ModelRegistry implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('ModelRegistry');
  private readonly rows: LastGoodCache<ModelEntity | null>;
  private readonly descriptions = new Map<string, ModelDescription>();
  /** Enabled models served lately (bounded by the registry's size), and when. */
  private readonly hot = new Map<string, number>();
  private refreshing = false;
  private refreshFailing = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    @InjectRepository(ModelEntity) private readonly models: Repository<ModelEntity>,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    metrics: ApiMetrics,
  ) {
    this.rows = new LastGoodCache<ModelEntity | null>({
      ttlMs: CACHE_MS,
      staleMs: STALE_MS,
      serveStale: (row) => row !== null && row.enabled,
      lastGoodMs: LAST_GOOD_MS,
      onLastGood: (err) => {
        if (err) dependencyState.report(err);
        metrics.lastGoodAnswers.inc({ cache: 'registry' });
      },
    });
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.refreshHot(), CACHE_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Reads the rows of the models served lately again, in one query, so that a request finds them fresh even after a
   * quiet spell instead of waiting for Postgres (the first of a burst would hold the burst up).
   */
  async refreshHot(now = Date.now()): Promise<void> {
    for (const [id, at] of this.hot) if (now - at > HOT_MS) this.hot.delete(id);
    if (this.hot.size === 0 || this.refreshing) return;
    this.refreshing = true;
    const since = this.rows.version;
    const ids = [...this.hot.keys()];
    try {
      const found = await this.models.findBy({ id: In(ids) });
      for (const id of ids) this.rows.set(id, found.find((row) => row.id === id) ?? null, since);
      this.refreshFailing = false;
    } catch (err) {
      // once per outage (the dependency monitor logs Postgres outages): requests then read on their own, and keep
      // the last good rows while reads fail
      if (!this.refreshFailing && !dependencyState.report(err))
        this.logger.warn(`refreshing the registry rows in use failed: ${(err as Error).message}`);
      this.refreshFailing = true;
    } finally {
      this.refreshing = false;
    }
  }

  get defaultModel(): string {
    return this.config.modelName;
  }

  /** The registry row, enabled or not (cached briefly); null when there is none. */
  record(id: string): Promise<ModelEntity | null> {
    return this.row(id);
  }

  /** Forgets cached rows, after an admin change on this replica. */
  invalidate(id?: string): void {
    if (id) this.rows.delete(id);
    else this.rows.clear();
  }

  /** The model, or null when no enabled model has that id. A broken directory throws its `ModelError`. */
  async resolve(id: string): Promise<ResolvedModel | null> {
    const row = await this.row(id);
    if (!row || !row.enabled) return null;
    this.hot.set(row.id, Date.now());
    const key = `${row.id}\0${row.path}`;
    let description = this.descriptions.get(key);
    if (!description) {
      const started = Date.now();
      description = describeModel(row.path);
      this.descriptions.set(key, description);
      this.logger.log(`read ${row.id} from ${row.path} in ${Date.now() - started} ms`);
    }
    const { maxInputTokens, maxTotalTokens } = tokenLimits(row, description.config.maxPositions, this.config);
    return {
      record: row,
      description,
      limits: {
        ...DEFAULT_VALIDATION_LIMITS,
        maxStopSequences: this.config.maxStopSequences,
        maxBestOf: this.config.maxBestOf,
        maxTopNTokens: this.config.maxTopNTokens,
        maxInputTokens,
        maxTotalTokens,
      },
      spec: {
        id: row.id,
        path: row.path,
        pinned: row.pinned,
        maxInputTokens,
        maxTotalTokens,
        quantization: row.quantization,
        keepAliveMs: row.keepAliveMs,
      },
    };
  }

  async list(): Promise<ModelEntity[]> {
    return this.models.find({ where: { enabled: true }, order: { id: 'ASC' } });
  }

  private row(id: string): Promise<ModelEntity | null> {
    return this.rows.get(id, () => this.models.findOneBy({ id }));
  }
}

/**
 * A model's token limits: its row's own, else the launcher's flags for the default model, else its context; never
 * past the context, and the input always below the total. The registry serves by them and the admin routes check
 * `default_parameters` against them.
 */
export function tokenLimits(
  row: Pick<ModelEntity, 'id' | 'maxInputTokens' | 'maxTotalTokens'>,
  positions: number,
  config: Pick<ApiConfig, 'modelName' | 'maxInputTokens' | 'maxTotalTokens'>,
): { maxInputTokens: number; maxTotalTokens: number } {
  const isDefault = row.id === config.modelName;
  const maxTotalTokens = Math.min(
    positions,
    row.maxTotalTokens ?? (isDefault ? config.maxTotalTokens : null) ?? positions,
  );
  const maxInputTokens = Math.min(
    maxTotalTokens - 1,
    row.maxInputTokens ?? (isDefault ? config.maxInputTokens : null) ?? maxTotalTokens - 1,
  );
  return { maxInputTokens, maxTotalTokens };
}

/** The launcher's registration of `--model-id`: insert, or update the path of an existing id. */
export async function upsertModel(
  dataSource: DataSource,
  id: string,
  path: string,
  memoryBytes: number,
  quantize: string | null,
): Promise<void> {
  await dataSource.query(
    `INSERT INTO models (id, path, memory_bytes, quantization) VALUES ($1, $2, $3, $4)
     ON CONFLICT (id) DO UPDATE SET path = EXCLUDED.path, memory_bytes = EXCLUDED.memory_bytes,
       quantization = EXCLUDED.quantization, updated_at = now()`,
    [id, path, memoryBytes, quantize],
  );
}
