import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DataSource } from 'typeorm';
import { UsageRecord, UsageService } from './usage.service';

/** Stands in for Postgres: the buffering logic is under test here; the e2e tests write to the real one. */
class FakeDataSource {
  down = false;
  rows: unknown[][] = [];
  statements = 0;
  query(sql: string, values: unknown[]): Promise<unknown[]> {
    this.statements++;
    if (this.down) return Promise.reject(new Error('connection refused'));
    assert.match(sql, /ON CONFLICT \(request_id\) DO NOTHING/);
    for (let i = 0; i < values.length; i += 14) this.rows.push(values.slice(i, i + 14));
    return Promise.resolve([]);
  }
}

function record(i: number): UsageRecord {
  return {
    requestId: `r${i}`,
    keyId: null,
    requestedModel: 'm',
    servedModel: 'm',
    route: '/generate',
    promptTokens: 3,
    generatedTokens: 5,
    finishReason: 'length',
    status: 200,
    errorType: null,
    queueMs: 1.4,
    ttftMs: null,
    totalMs: 10.6,
    createdAt: new Date(),
  };
}

describe('UsageService', () => {
  it('writes buffered records in batches, as bound parameters', async () => {
    const db = new FakeDataSource();
    const usage = new UsageService(db as unknown as DataSource);
    for (let i = 0; i < 1200; i++) usage.record(record(i));
    await usage.flush();
    assert.equal(db.rows.length, 1200);
    assert.ok(db.statements <= 4, `${db.statements} statements for 1200 rows`);
    assert.equal(db.rows[0][0], 'r0');
    assert.equal(db.rows[0][10], 1, 'milliseconds are rounded');
    assert.equal(usage.pending, 0);
    await usage.beforeApplicationShutdown();
  });

  it('keeps records through a database outage and writes them when it is back', async () => {
    const db = new FakeDataSource();
    const usage = new UsageService(db as unknown as DataSource);
    db.down = true;
    for (let i = 0; i < 10; i++) usage.record(record(i));
    await usage.flush();
    assert.equal(usage.pending, 10);
    assert.equal(db.rows.length, 0);
    db.down = false;
    await usage.beforeApplicationShutdown();
    assert.equal(usage.pending, 0);
    assert.deepEqual(
      db.rows.map((r) => r[0]),
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
  });
});
