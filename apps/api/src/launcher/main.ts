/**
 * The launcher (`npm start`, the `switchyard` bin): validates the flags and the model directory, runs the
 * migrations, starts the API process and waits until it answers, then forwards signals and stops everything
 * on Ctrl-C. A child that dies during start-up makes the launcher exit non-zero.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describeModel, ModelError } from '@switchyard/models';
import { ConfigError, readApiConfig } from '../config/api-config';
import { migrate } from '../database/migrate';

const API_MAIN = join(__dirname, '..', 'main.js');
const READY_TIMEOUT_MS = 60_000;

function log(line: string): void {
  console.log(`switchyard: ${line}`);
}

async function waitForHealth(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the API exited with code ${child.exitCode} during start-up`);
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the API did not answer ${url}/health within ${READY_TIMEOUT_MS / 1000} s`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const config = readApiConfig(argv, process.env);
  const model = describeModel(config.modelDir);
  log(
    `model ${config.modelName}: ${model.config.modelType}, ${model.config.numLayers} layers, ` +
      `${(model.memory.weightBytes / 2 ** 20).toFixed(1)} MiB of weights (${config.modelDir})`,
  );
  await migrate(config.databaseUrl, log);

  const api = spawn(process.execPath, [API_MAIN, ...argv], { stdio: 'inherit' });
  const children = [api];
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  api.on('exit', (code, signal) => {
    if (!stopping) log(`the API exited (${signal ?? code}); stopping`);
    stop('SIGTERM');
    process.exitCode = stopping && (code === 0 || signal === 'SIGTERM') ? 0 : 1;
  });

  const url = `http://${config.hostname}:${config.port}`;
  await waitForHealth(url, api);
  log(`ready: ${url}  (try: curl ${url}/info)`);
}

main().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof ModelError;
  console.error(`switchyard: ${known ? (err as Error).message : String((err as Error)?.stack ?? err)}`);
  process.exit(1);
});
