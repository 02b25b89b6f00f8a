/**
 * One usage record per request, success or failure, written off the request's path: records gather in memory
 * and go to Postgres in batches (one multi-row INSERT, `ON CONFLICT (request_id) DO NOTHING` so a retried write
 * never counts twice). A Postgres outage keeps them buffered (bounded, and said in the logs) and retries; the
 * buffer is flushed on shutdown.
 */
import { BeforeApplicationShutdown, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

export interface UsageRecord {
  requestId: string;
  keyId: string | null;
  requestedModel: string | null;
  servedModel: string | null;
  route: string;
  promptTokens: number;
  generatedTokens: number;
  finishReason: string | null;
  status: number;
  errorType: string | null;
  queueMs: number | null;
  ttftMs: number | null;
  totalMs: number;
  createdAt: Date;
}

export interface UsageRow {
  group: string;
  requests: number;
  prompt_tokens: number;
  generated_tokens: number;
  errors: number;
}

const FLUSH_MS = 1000;
const BATCH = 500;
/** Records held while Postgres is unreachable; past this the oldest are dropped, and the logs say how many. */
const MAX_BUFFER = 100_000;
const COLUMNS = 14;

@Injectable()
export class UsageService implements BeforeApplicationShutdown {
  private readonly logger = new Logger('Usage');
  private buffer: UsageRecord[] = [];
  private flushing: Promise<void> | null = null;
  private failing = false;
  private dropped = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {
    this.timer = setInterval(() => void this.flush(), FLUSH_MS);
    this.timer.unref();
  }

  record(record: UsageRecord): void {
    this.buffer.push(record);
    if (this.buffer.length > MAX_BUFFER) {
      const excess = this.buffer.length - MAX_BUFFER;
      this.buffer.splice(0, excess);
      this.dropped += excess;
      this.logger.error(`usage buffer full: dropped ${this.dropped} records so far while Postgres is unreachable`);
    }
    if (this.buffer.length >= BATCH) void this.flush();
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Writes what is buffered; concurrent calls share one flush. */
  flush(): Promise<void> {
    this.flushing ??= this.writeAll().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** Before the data source closes (that happens in onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    if (this.buffer.length > 0) this.logger.error(`shutting down with ${this.buffer.length} usage records unwritten`);
  }

  async summary(from: Date, to: Date, groupBy: 'model' | 'key' | 'day'): Promise<UsageRow[]> {
    await this.flush();
    const group =
      groupBy === 'model'
        ? `COALESCE(served_model, requested_model, '')`
        : groupBy === 'key'
          ? `COALESCE(key_id::text, '')`
          : `to_char(date_trunc('day', created_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')`;
    // `group` is one of three fixed expressions above; the user's values travel as parameters
    const rows = await this.dataSource.query<
      { group: string; requests: number; prompt_tokens: string; generated_tokens: string; errors: number }[]
    >(
      `SELECT ${group} AS "group", count(*)::int AS requests,
              COALESCE(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
              COALESCE(sum(generated_tokens), 0)::bigint AS generated_tokens,
              count(*) FILTER (WHERE status >= 400)::int AS errors
         FROM usage_records
        WHERE created_at >= $1 AND created_at < $2
        GROUP BY 1 ORDER BY 1`,
      [from, to],
    );
    return rows.map((r) => ({
      group: r.group,
      requests: r.requests,
      prompt_tokens: Number(r.prompt_tokens),
      generated_tokens: Number(r.generated_tokens),
      errors: r.errors,
    }));
  }

  private async writeAll(): Promise<void> {
    while (this.buffer.length > 0) {
      const batch = this.buffer.slice(0, BATCH);
      try {
        await this.insert(batch);
      } catch (err) {
        if (!this.failing) {
          this.logger.error(
            `writing usage records failed (${(err as Error).message}); keeping ${this.buffer.length} buffered and retrying`,
          );
        }
        this.failing = true;
        return;
      }
      this.buffer.splice(0, batch.length);
      if (this.failing) {
        this.failing = false;
        this.logger.log('writing usage records works again');
      }
    }
  }

  private async insert(batch: UsageRecord[]): Promise<void> {
    const values: unknown[] = [];
    const rows: string[] = [];
    batch.forEach((r, i) => {
      const o = i * COLUMNS;
      rows.push(`(${Array.from({ length: COLUMNS }, (_, j) => `$${o + j + 1}`).join(', ')})`);
      values.push(
        r.requestId,
        r.keyId,
        r.requestedModel,
        r.servedModel,
        r.route,
        r.promptTokens,
        r.generatedTokens,
        r.finishReason,
        r.status,
        r.errorType,
        r.queueMs === null ? null : Math.round(r.queueMs),
        r.ttftMs === null ? null : Math.round(r.ttftMs),
        Math.round(r.totalMs),
        r.createdAt,
      );
    });
    await this.dataSource.query(
      `INSERT INTO usage_records (request_id, key_id, requested_model, served_model, route, prompt_tokens,
         generated_tokens, finish_reason, status, error_type, queue_ms, ttft_ms, total_ms, created_at)
       VALUES ${rows.join(', ')}
       ON CONFLICT (request_id) DO NOTHING`,
      values,
    );
  }
}
