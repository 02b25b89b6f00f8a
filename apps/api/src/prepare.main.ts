/**
 * The preparation step the launcher runs before it starts the API and the workers, as its own process (the
 * launcher may not import the API's source): checks that the default model fits a worker, runs the migrations,
 * registers `--model-id` in the registry and, with no admin key anywhere, makes one and prints it once. Takes the
 * launcher's flags. Exits 0 when the platform may start; otherwise prints why and exits 1.
 */
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { ConfigError, readApiConfig, readWorkerConfig } from '@switchyard/config';
import { describeModel, formatBytes, ModelError, poolBytes } from '@switchyard/models';
import { generateKey, hashKey } from './auth/api-keys.service';
import { createDataSource } from './database/data-source';
import { migrate } from './database/migrate';
import { upsertModel } from './registry/model-registry.service';

function log(line: string): void {
  console.log(`switchyard: ${line}`);
}

async function prepare(): Promise<void> {
  const config = readApiConfig(process.argv.slice(2), process.env);
  const worker = readWorkerConfig(config.workerArgs, {});
  const model = describeModel(config.modelDir, {
    dtype: worker.dtype,
    quantize: config.quantize,
    quantizeBlockSize: worker.quantizeBlockSize,
    executionProvider: worker.executionProvider,
  });
  const bytes = poolBytes(model.memory, {
    totalTokens: worker.scheduler.maxBatchTotalTokens,
    prefillTokens: worker.scheduler.maxBatchPrefillTokens,
  });
  const quantized = config.quantize === 'none' ? '' : ` once quantized to ${config.quantize}`;
  log(
    `model ${config.modelName}: ${model.config.modelType}, ${model.config.numLayers} layers, ` +
      `${formatBytes(model.memory.weightBytes)} of weights${quantized}, ${formatBytes(bytes)} with its KV budget and largest prefill ` +
      `(${model.graphFile}); each worker's budget: ${formatBytes(worker.deviceMemory)}`,
  );
  if (bytes > worker.deviceMemory) {
    throw new ConfigError(
      `--device-memory ${formatBytes(worker.deviceMemory)} cannot hold ${config.modelName} (${formatBytes(bytes)}): raise it or lower --max-batch-total-tokens`,
    );
  }
  await migrate(config.databaseUrl, log);
  const dataSource = await createDataSource(config.databaseUrl).initialize();
  try {
    await upsertModel(dataSource, config.modelName, config.modelDir, bytes, config.quantize);
    log(`registered ${config.modelName}`);
    if (!config.disableAuth && !config.adminKey) await ensureAdminKey(dataSource);
  } finally {
    await dataSource.destroy();
  }
}

/** With no SWITCHYARD_ADMIN_KEY and no admin key in the database yet, makes one and prints it, once. */
async function ensureAdminKey(dataSource: DataSource): Promise<void> {
  const found = await dataSource.query<unknown[]>(
    `SELECT 1 FROM api_keys WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL
       AND (expires_at IS NULL OR expires_at > now()) LIMIT 1`,
  );
  if (found.length > 0) return;
  const key = generateKey();
  await dataSource.query(`INSERT INTO api_keys (id, name, key_hash, prefix, scopes) VALUES ($1, $2, $3, $4, $5)`, [
    randomUUID(),
    'admin (made at first start)',
    hashKey(key),
    key.slice(0, 9),
    ['inference', 'admin'],
  ]);
  log('created an admin key. It is shown this once and stored only as a hash: keep it now.');
  log(`  SWITCHYARD_KEY=${key}`);
  log('  (or set SWITCHYARD_ADMIN_KEY yourself before starting)');
}

prepare().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof ModelError;
  console.error(`switchyard: ${known ? err.message : String((err as Error)?.stack ?? err)}`);
  process.exit(1);
});
