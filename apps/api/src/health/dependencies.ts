/**
 * Whether the API's two stores answer: Postgres (keys, registry, usage) and Redis (queues, streams, heartbeats).
 * A probe checks each every half second, with a timeout, and any failed call on the request path that is a
 * connection failure marks its store down at once. An outage is logged once when it starts and once when it ends,
 * with its length, never once per request; `/health` and `switchyard_dependency_up` read the state from here, so
 * they answer at once whatever the stores do.
 */
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ApiMetrics } from '../metrics/api-metrics';
import { RedisService } from '../redis/redis.service';

export type Dependency = 'postgres' | 'redis';

/** How often each store is probed, and how long a probe may take before the store counts as down. */
export const PROBE_MS = 500;
export const PROBE_TIMEOUT_MS = 1000;

/** Node's and the Postgres protocol's ways of saying "the server cannot be reached". */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);
/** SQLSTATE classes 08 (connection exception) and 57P01-57P03 (the server shutting down or starting). */
const PG_UNAVAILABLE = /^(08|57P0[123])/;
const PG_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Query read timeout|Client has encountered a connection error|the database system is (starting up|shutting down)/i;

/** The store a failure shows to be unreachable, or null for any other error. */
export function unreachable(err: unknown): Dependency | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; driverError?: unknown };
  const driver = (e.driverError ?? e) as { code?: unknown; message?: unknown };
  const code = typeof driver.code === 'string' ? driver.code : typeof e.code === 'string' ? e.code : '';
  const raw = driver.message ?? e.message;
  // only a driver's own text can match the patterns below
  const message = typeof raw === 'string' ? raw : '';
  if (
    e.name === 'MaxRetriesPerRequestError' ||
    /Command timed out|Connection is closed|Stream isn't writeable/.test(message)
  ) {
    return 'redis';
  }
  if (e.name === 'QueryFailedError' && PG_UNAVAILABLE.test(code)) return 'postgres';
  if (PG_MESSAGES.test(message)) return 'postgres';
  // Redis calls on the request path are wrapped where they are made (redis.service.ts): a bare network error here
  // comes from the Postgres driver
  if (NETWORK_CODES.has(code)) return 'postgres';
  return null;
}

interface Outage {
  since: number;
  reason: string;
}

/** The process's view of its stores; one instance per process (the error filter reports to it too). */
export class DependencyState {
  private readonly down = new Map<Dependency, Outage>();
  private readonly logger = new Logger('Dependencies');
  /** Called on every change (the metrics gauge). */
  onChange: (dependency: Dependency, up: boolean) => void = () => undefined;

  isUp(dependency: Dependency): boolean {
    return !this.down.has(dependency);
  }

  /** What is down, as a sentence for clients (the reasons, with addresses, stay in the log); null when none. */
  describe(): string | null {
    if (this.down.size === 0) return null;
    return [...this.down]
      .map(([dep, o]) => `${NAMES[dep]} is unreachable (for ${Math.round((Date.now() - o.since) / 1000)} s)`)
      .join('; ');
  }

  /** The stores that are down. */
  missing(): Dependency[] {
    return [...this.down.keys()];
  }

  markDown(dependency: Dependency, err: unknown): void {
    if (this.down.has(dependency)) return;
    const reason = (err as Error)?.message?.split('\n')[0] || String(err);
    this.down.set(dependency, { since: Date.now(), reason });
    this.logger.error(`${NAMES[dependency]} is unreachable (${reason}): ${CONSEQUENCES[dependency]}`);
    this.onChange(dependency, false);
  }

  markUp(dependency: Dependency): void {
    const outage = this.down.get(dependency);
    if (!outage) return;
    this.down.delete(dependency);
    this.logger.log(`${NAMES[dependency]} answers again after ${((Date.now() - outage.since) / 1000).toFixed(1)} s`);
    this.onChange(dependency, true);
  }

  /** Marks the store an error shows to be unreachable; true if it was such an error. */
  report(err: unknown): boolean {
    const dependency = unreachable(err);
    if (dependency) this.markDown(dependency, err);
    return dependency !== null;
  }
}

const NAMES: Record<Dependency, string> = { postgres: 'Postgres', redis: 'Redis' };
const CONSEQUENCES: Record<Dependency, string> = {
  postgres:
    'known API keys and registry rows are served from their last good values for up to 5 minutes, usage records stay buffered, admin routes answer 503',
  redis: 'generation requests answer 503 until it is back',
};

export const dependencyState = new DependencyState();

/** Resolves with `work`, or rejects once `ms` have passed. */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

@Injectable()
export class DependencyMonitor implements OnApplicationBootstrap, OnModuleDestroy {
  readonly state = dependencyState;
  private timer: NodeJS.Timeout | null = null;
  private probing = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly redis: RedisService,
    metrics: ApiMetrics,
  ) {
    const gauge = metrics.dependencyUp;
    for (const dep of ['postgres', 'redis'] as const) gauge.set({ dependency: dep }, 1);
    this.state.onChange = (dependency, up) => gauge.set({ dependency }, up ? 1 : 0);
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.probe(), PROBE_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One probe of each store, at most one at a time. */
  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await Promise.all([
        this.check('postgres', () => this.dataSource.query('SELECT 1')),
        this.check('redis', () => this.redis.redis.ping()),
      ]);
    } finally {
      this.probing = false;
    }
  }

  private async check(dependency: Dependency, call: () => Promise<unknown>): Promise<void> {
    try {
      await withTimeout(call(), PROBE_TIMEOUT_MS, NAMES[dependency]);
      this.state.markUp(dependency);
    } catch (err) {
      this.state.markDown(dependency, err);
    }
  }
}
