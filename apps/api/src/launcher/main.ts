/**
 * The launcher (`npm start`, the `switchyard` bin): validates every flag and the model directory, runs the
 * migrations, registers `--model-id` in the registry, starts the API and `--num-workers` workers, and waits
 * until `/health` says a worker serves the default model. Ctrl-C (or SIGTERM) stops everything. A child that dies
 * during start-up, or the API at any time, makes the launcher stop the others and exit non-zero; a worker that
 * dies later is started again.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describeModel, formatBytes, ModelError, poolBytes } from '@switchyard/models';
import { ConfigError as WorkerConfigError, readWorkerConfig } from '../../../gpu-worker/src/config/worker-config';
import { API_USAGE, ApiConfig, ConfigError, readApiConfig } from '../config/api-config';
import { createDataSource } from '../database/data-source';
import { migrate } from '../database/migrate';
import { upsertModel } from '../registry/model-registry.service';
import { generateKey, hashKey } from '../auth/api-keys.service';
import type { DataSource } from 'typeorm';

const API_MAIN = join(__dirname, '..', 'main.js');
const WORKER_MAIN = join(__dirname, '../../../gpu-worker/src/main.js');
const READY_TIMEOUT_MS = 120_000;

function log(line: string): void {
  console.log(`switchyard: ${line}`);
}

interface Child {
  name: string;
  process: ChildProcess;
}

async function waitForHealth(url: string, children: Child[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    for (const child of children) {
      if (child.process.exitCode !== null || child.process.signalCode !== null) {
        throw new Error(
          `the ${child.name} exited (${child.process.exitCode ?? child.process.signalCode}) during start-up`,
        );
      }
    }
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
      const body = (await res.json().catch(() => ({}))) as { error?: string };
      if (body.error && body.error !== last) {
        last = body.error;
        log(`waiting: ${body.error}`);
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url}/health did not answer 200 within ${READY_TIMEOUT_MS / 1000} s${last ? `: ${last}` : ''}`);
}

/** The flags each worker gets: the shared ones, its id, and the default model to load at start. */
function workerArgv(config: ApiConfig, index: number): string[] {
  return [
    ...config.workerArgs,
    `--worker-id=${hostname().replace(/[^A-Za-z0-9._-]/g, '-')}-${process.pid}-w${index}`,
    // the default model is pinned: /health stays up however long it idles
    `--pin=${config.modelName}=${config.modelDir}`,
  ];
}

async function register(config: ApiConfig): Promise<void> {
  const worker = readWorkerConfig(workerArgv(config, 0), {});
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
  const found = (await dataSource.query(
    `SELECT 1 FROM api_keys WHERE 'admin' = ANY(scopes) AND revoked_at IS NULL
       AND (expires_at IS NULL OR expires_at > now()) LIMIT 1`,
  )) as unknown[];
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

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(API_USAGE);
    return;
  }
  const config = readApiConfig(argv, process.env);
  await register(config);
  if (config.disableAuth) {
    log(
      'WARNING: --disable-auth: no API keys are checked; every route, admin included, is open to anyone who can reach the port',
    );
  }

  const children: Child[] = [
    { name: 'API', process: spawn(process.execPath, [API_MAIN, ...argv], { stdio: 'inherit' }) },
  ];
  let stopping = false;
  let ready = false;
  const stop = (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    process.exitCode = code;
    log(`${reason}: stopping`);
    for (const { process: child } of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }
  };
  /** Starts worker i; once the platform is up, a worker that dies is started again (at most 5 times a minute). */
  const restarts: number[] = [];
  const startWorker = (i: number, slot = children.length) => {
    const child: Child = {
      name: `worker ${i}`,
      process: spawn(process.execPath, [WORKER_MAIN, ...workerArgv(config, i)], { stdio: 'inherit' }),
    };
    children[slot] = child;
    child.process.on('exit', (code, signal) => {
      if (stopping) return;
      if (!ready) return stop(`the ${child.name} exited (${signal ?? code}) during start-up`, 1);
      const now = Date.now();
      while (restarts.length > 0 && now - restarts[0] > 60_000) restarts.shift();
      if (restarts.length >= 5) return stop(`the ${child.name} exited (${signal ?? code}) 5 times in a minute`, 1);
      restarts.push(now);
      log(
        `the ${child.name} exited (${signal ?? code}): its jobs run again elsewhere once their locks lapse; restarting it`,
      );
      startWorker(i, slot);
    });
  };
  for (let i = 0; i < config.numWorkers; i++) startWorker(i);
  process.on('SIGINT', () => stop('SIGINT', 0));
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  children[0].process.on('exit', (code, signal) => {
    if (!stopping) stop(`the API exited (${signal ?? code})`, 1);
  });

  const url = `http://${config.hostname}:${config.port}`;
  try {
    await waitForHealth(url, children);
  } catch (err) {
    stop((err as Error).message, 1);
    return;
  }
  ready = true;
  log(`ready: ${url}  ${config.numWorkers} worker(s), default model ${config.modelName}`);
  const auth = config.disableAuth ? '' : ` -H "Authorization: Bearer $SWITCHYARD_KEY"`;
  log(
    `try: curl ${url}/generate -X POST -d '{"inputs":"The future of AI is","parameters":{"max_new_tokens":50}}' -H 'Content-Type: application/json'${auth}`,
  );
}

main().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof WorkerConfigError || err instanceof ModelError;
  console.error(`switchyard: ${known ? (err as Error).message : String((err as Error)?.stack ?? err)}`);
  process.exit(1);
});
