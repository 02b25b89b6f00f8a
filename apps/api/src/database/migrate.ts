/**
 * Brings the database up to date: creates it when the server has none of that name, then runs the pending
 * migrations, each logged with its duration.
 */
import { Client } from 'pg';
import { createDataSource } from './data-source';

export interface MigrateResult {
  created: boolean;
  applied: string[];
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/;

async function ensureDatabase(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!IDENTIFIER.test(name)) throw new Error(`database name "${name}" in the database URL is not a plain identifier`);
  url.pathname = '/postgres';
  const client = new Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    // CREATE DATABASE takes no parameters; the name was checked against IDENTIFIER above and is quoted.
    await client.query(`CREATE DATABASE "${name}"`);
    return true;
  } catch (err) {
    // Two starts racing to create it: the loser finds it made.
    if ((err as { code?: string }).code === '42P04') return false;
    throw err;
  } finally {
    await client.end();
  }
}

export async function migrate(databaseUrl: string, log: (line: string) => void = () => {}): Promise<MigrateResult> {
  const created = await ensureDatabase(databaseUrl);
  if (created) log(`created database ${new URL(databaseUrl).pathname.slice(1)}`);
  const dataSource = createDataSource(databaseUrl);
  await dataSource.initialize();
  try {
    const started = Date.now();
    const migrations = await dataSource.runMigrations({ transaction: 'each' });
    const applied = migrations.map((m) => m.name);
    log(
      applied.length
        ? `applied ${applied.length} migration(s) in ${Date.now() - started} ms: ${applied.join(', ')}`
        : 'database schema is up to date',
    );
    return { created, applied };
  } finally {
    await dataSource.destroy();
  }
}
