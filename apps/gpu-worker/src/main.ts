/**
 * The worker process: a Nest standalone app that turns queued requests into tokens. Started by the launcher
 * (npm start), or on its own: `node dist/apps/gpu-worker/src/main.js --preload models/demo-tiny`.
 * SIGTERM or SIGINT drains the running requests (bounded by --drain-timeout) and exits 0. Should the shutdown itself
 * hang (a load that does not end, a Redis that does not answer), the process exits 1 a few seconds past the deadline.
 */
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { Logger } from '@nestjs/common';
import { ConfigError, QuietLogger, readWorkerConfig, WORKER_USAGE } from '@switchyard/config';
import { startTracing } from '@switchyard/telemetry';
import { WorkerModule } from './worker.module';

/** How long past --drain-timeout a shutdown may take before the process exits regardless. */
const SHUTDOWN_MARGIN_MS = 5000;

async function bootstrap(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(WORKER_USAGE);
    return;
  }
  const config = readWorkerConfig(process.argv.slice(2), process.env);
  // before the app, so that its shutdown hook exports the last spans once the drain has ended every request
  const tracing = await startTracing('switchyard-worker', process.env, config.workerId);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, tracing), {
    logger: new QuietLogger(),
  });
  if (tracing.enabled) {
    new Logger('Worker').log(`tracing: spans go to ${tracing.endpoint} over OTLP/HTTP, as switchyard-worker`);
  }
  // useProcessExit: exit 0 after the hooks ran, rather than re-raising the signal
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  const backstop = (signal: NodeJS.Signals) => {
    process.off('SIGTERM', backstop);
    process.off('SIGINT', backstop);
    const limit = config.drainTimeoutMs + SHUTDOWN_MARGIN_MS;
    setTimeout(() => {
      console.error(`switchyard worker: still stopping ${limit} ms after ${signal}: exiting`);
      process.exit(1);
    }, limit).unref();
  };
  process.on('SIGTERM', backstop);
  process.on('SIGINT', backstop);
  await app.init();
}

bootstrap().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`switchyard worker: ${err.message}`);
  else console.error('switchyard worker: failed to start:', err);
  process.exit(1);
});
