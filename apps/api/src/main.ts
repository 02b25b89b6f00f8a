/**
 * The API process: validates its config and the default model directory, then serves HTTP. Started by the
 * launcher (npm start), or on its own with the same flags.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { describeModel, ModelError } from '@switchyard/models';
import { AppModule } from './app.module';
import { ConfigError, readApiConfig } from './config/api-config';

async function bootstrap(): Promise<void> {
  const logger = new Logger('Api');
  const config = readApiConfig(process.argv.slice(2), process.env);
  const description = describeModel(config.modelDir);
  const app = await NestFactory.create(AppModule.forRoot(config, { name: config.modelName, description }), {
    logger: ['log', 'warn', 'error'],
  });
  app.enableShutdownHooks();
  await app.listen(config.port, config.hostname);
  logger.log(`serving ${config.modelName} on http://${config.hostname}:${config.port}`);
}

bootstrap().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof ModelError) {
    console.error(`switchyard api: ${err.message}`);
  } else {
    console.error('switchyard api: failed to start:', err);
  }
  process.exit(1);
});
