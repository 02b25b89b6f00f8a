/**
 * The API process: serves the TGI and OpenAI routes on the models of the registry. Started by the launcher
 * (npm start), or on its own with the same flags once the database is migrated and the model registered.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { AppModule } from './app.module';
import { ApiKeysService, Principal } from './auth/api-keys.service';
import { ErrorFilter, sendError } from './common/error.filter';
import { requestId } from './common/request-id.middleware';
import { traceRequest } from './common/request-trace.middleware';
import { API_USAGE, apiUrl, ConfigError, readApiConfig } from '@switchyard/config';
import { QuietLogger } from '@switchyard/config';
import { startTracing } from '@switchyard/telemetry';

async function bootstrap(): Promise<void> {
  const logger = new Logger('Api');
  if (process.argv.includes('--help') || process.argv.includes('-h')) return console.log(API_USAGE);
  const config = readApiConfig(process.argv.slice(2), process.env);
  // before the app, so that its shutdown hook exports the last spans once the HTTP server has closed
  const tracing = await startTracing('switchyard-api', process.env);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, tracing), {
    logger: new QuietLogger(),
    bodyParser: false,
  });
  app.use(requestId);
  if (tracing.enabled) {
    app.use(traceRequest);
    logger.log(`tracing: spans go to ${tracing.endpoint} over OTLP/HTTP, as switchyard-api`);
  }
  // Once stopping, every response closes its connection, and idle kept-alive ones are closed (below): a client
  // holding a connection open must not hold the API past its shutdown (server.close waits for them all).
  let stopping = false;
  app.use((_req: Request, res: Response, next: NextFunction) => {
    if (stopping) res.setHeader('connection', 'close');
    next();
  });
  // The key is checked before a body is read: a client without one cannot make the API parse megabytes. Every route
  // that takes a body needs a key (the public ones are GETs); the guard then finds the caller on the request.
  if (!config.disableAuth) {
    const keys = app.get(ApiKeysService);
    app.use((req: Request, _res: Response, next: NextFunction) => {
      if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'OPTIONS') return next();
      keys.authenticate(req.header('authorization')).then((principal) => {
        (req as Request & { principal?: Principal }).principal = principal;
        next();
      }, next);
    });
  }
  // JSON whatever the content type says (curl users forget it), within TGI's payload limit
  app.use(express.json({ limit: config.payloadLimit, type: () => true, strict: false }));
  const filter = new ErrorFilter();
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    sendError(req, res, filter.toApiError(err, req));
  });
  app.enableShutdownHooks();
  // Keep idle client connections for 65 s (Node's default is 5 s): longer than the usual load balancer's idle
  // timeout (60 s), so a balancer never reuses a connection this side has just closed, and a client that pauses
  // between requests does not pay a new connection on its next one. The header timeout must exceed it.
  const server = app.getHttpServer();
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // Connections, and whether a response is under way on each: once stopping, one with none is closed (Node's own
  // notion of idle misses a connection a client opened and never used).
  const busy = new Map<import('node:net').Socket, number>();
  server.on('connection', (socket: import('node:net').Socket) => {
    busy.set(socket, 0);
    socket.once('close', () => busy.delete(socket));
  });
  server.on('request', (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const socket = req.socket;
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (busy.has(socket)) busy.set(socket, left);
      if (stopping && left === 0) socket.destroy();
    });
  });
  const closeIdle = () => {
    for (const [socket, responses] of busy) if (responses === 0) socket.destroy();
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stopping = true;
      closeIdle();
      setInterval(closeIdle, 100).unref();
    });
  }
  await app.listen(config.port, config.hostname);
  logger.log(`listening on ${apiUrl(config.hostname, config.port)} (default model ${config.modelName})`);
}

bootstrap().catch((err: unknown) => {
  if (err instanceof ConfigError) console.error(`switchyard api: ${err.message}`);
  else console.error('switchyard api: failed to start:', err);
  process.exit(1);
});
