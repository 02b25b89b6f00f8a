/**
 * API keys: made random with a recognisable prefix (`sy-`), stored only as a sha256 hash, looked up by hash and
 * compared in constant time. A lookup is cached for at most a second, so a revoked key stops working on every
 * replica within one second. The admin key from `SWITCHYARD_ADMIN_KEY` is never stored: its hash is compared.
 * While Postgres cannot be read, a key looked up within the last 5 minutes keeps its last known row (a known key
 * keeps working through a database blip; a revocation made meanwhile shows when Postgres is back); an unknown key
 * gets 503.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, Repository } from 'typeorm';
import { ApiError } from '../common/api-error';
import { LastGoodCache } from '../common/last-good-cache';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { dependencyState } from '../health/dependencies';
import { ApiMetrics } from '../metrics/api-metrics';
import { ApiKeyEntity, Scope } from './api-key.entity';

export const KEY_PREFIX = 'sy-';

export function generateKey(): string {
  return KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Who is calling: a stored key, or the admin key from the environment (`keyId` null). */
export interface Principal {
  keyId: string | null;
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Model ids the key may use; null means all. */
  allowedModels: readonly string[] | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
}

/** With --disable-auth everyone is this. */
export const ANONYMOUS: Principal = {
  keyId: null,
  name: 'anonymous (auth disabled)',
  scopes: new Set<Scope>(['inference', 'admin']),
  allowedModels: null,
  rpmLimit: null,
  tpmLimit: null,
};

const CACHE_MS = 1000;
/** How long a key's last known row is trusted while Postgres cannot be read. */
export const LAST_GOOD_MS = 5 * 60_000;
const LAST_USED_EVERY_MS = 60_000;
/** Longest Authorization header we read; anything longer is not one of our keys. */
const MAX_KEY_LENGTH = 256;

export interface NewKey {
  name: string;
  scopes: Scope[];
  allowedModels: string[] | null;
  rpmLimit: number | null;
  tpmLimit: number | null;
  expiresAt: Date | null;
}

@Injectable()
export class ApiKeysService {
  private readonly logger = new Logger('ApiKeys');
  private readonly cache: LastGoodCache<ApiKeyEntity | null>;
  private readonly lastUsedWritten = new Map<string, number>();
  private readonly adminHash: Buffer | null;

  constructor(
    @InjectRepository(ApiKeyEntity) private readonly keys: Repository<ApiKeyEntity>,
    @Inject(API_CONFIG) config: ApiConfig,
    metrics: ApiMetrics,
  ) {
    this.cache = new LastGoodCache<ApiKeyEntity | null>({
      ttlMs: CACHE_MS,
      lastGoodMs: LAST_GOOD_MS,
      onLastGood: (err) => {
        if (err) dependencyState.report(err);
        metrics.lastGoodAnswers.inc({ cache: 'api_keys' });
      },
    });
    this.adminHash = config.adminKey ? Buffer.from(hashKey(config.adminKey), 'hex') : null;
  }

  /** The caller of a request with this Authorization header; 401 for none, a wrong, revoked or expired key. */
  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header) throw new ApiError(401, 'unauthorized', 'an API key is required: send "Authorization: Bearer <key>"');
    const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!m || m[1].length > MAX_KEY_LENGTH) {
      throw new ApiError(401, 'unauthorized', 'the Authorization header must be "Bearer <key>"');
    }
    const hash = Buffer.from(hashKey(m[1]), 'hex');
    if (this.adminHash && timingSafeEqual(hash, this.adminHash)) {
      return {
        keyId: null,
        name: 'admin (SWITCHYARD_ADMIN_KEY)',
        scopes: new Set<Scope>(['inference', 'admin']),
        allowedModels: null,
        rpmLimit: null,
        tpmLimit: null,
      };
    }
    const row = await this.lookup(hash.toString('hex'));
    // the row was found by its hash; compare again in constant time so no branch depends on a partial match
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash, 'hex'), hash)) {
      throw new ApiError(401, 'unauthorized', 'the API key is not valid');
    }
    if (row.revokedAt) throw new ApiError(401, 'unauthorized', 'the API key has been revoked');
    if (row.expiresAt && row.expiresAt.getTime() <= Date.now()) {
      throw new ApiError(401, 'unauthorized', 'the API key has expired');
    }
    this.noteUse(row.id);
    return {
      keyId: row.id,
      name: row.name,
      scopes: new Set(row.scopes),
      allowedModels: row.allowedModels,
      rpmLimit: row.rpmLimit,
      tpmLimit: row.tpmLimit,
    };
  }

  async create(input: NewKey): Promise<{ key: string; row: ApiKeyEntity }> {
    const key = generateKey();
    const row = this.keys.create({
      id: randomUUID(),
      name: input.name,
      keyHash: hashKey(key),
      prefix: key.slice(0, 9),
      scopes: input.scopes,
      allowedModels: input.allowedModels,
      rpmLimit: input.rpmLimit,
      tpmLimit: input.tpmLimit,
      expiresAt: input.expiresAt,
      revokedAt: null,
      lastUsedAt: null,
    });
    await this.keys.insert(row);
    return { key, row: (await this.keys.findOneBy({ id: row.id }))! };
  }

  list(): Promise<ApiKeyEntity[]> {
    return this.keys.find({ order: { createdAt: 'ASC' } });
  }

  /** Revokes a key; false when there is no such key (or it was revoked already). */
  async revoke(id: string): Promise<boolean> {
    const result = await this.keys.update({ id, revokedAt: IsNull() }, { revokedAt: () => 'now()' });
    this.cache.clear();
    return (result.affected ?? 0) > 0;
  }

  private lookup(hash: string): Promise<ApiKeyEntity | null> {
    return this.cache.get(hash, () => this.keys.findOneBy({ keyHash: hash }));
  }

  /** `last_used_at`, written at most once a minute per key and off the request's path. */
  private noteUse(id: string): void {
    const last = this.lastUsedWritten.get(id) ?? 0;
    if (Date.now() - last < LAST_USED_EVERY_MS) return;
    this.lastUsedWritten.set(id, Date.now());
    this.keys.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [id]).catch((err: Error) => {
      // an outage is logged once, by the dependency monitor
      if (!dependencyState.report(err)) this.logger.warn(`recording a key's last use failed: ${err.message}`);
    });
  }
}
