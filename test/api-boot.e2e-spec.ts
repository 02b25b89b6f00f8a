import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import request from 'supertest';
import { describeModel } from '@switchyard/models';
import { AppModule } from '../apps/api/src/app.module';
import { ConfigError, readApiConfig } from '../apps/api/src/config/api-config';
import { modelDir, REPO_ROOT } from './support/repo';

describe('API boot: config, /health and /info', () => {
  let app: INestApplication;

  before(async () => {
    const config = readApiConfig(['--model-id', modelDir('demo-tiny'), '--port', '18089'], {}, REPO_ROOT);
    const description = describeModel(config.modelDir);
    app = await NestFactory.create(AppModule.forRoot(config, { name: config.modelName, description }), {
      logger: false,
    });
    await app.init();
  });
  after(async () => app?.close());

  it('answers /health once the model is validated', async () => {
    await request(app.getHttpServer()).get('/health').expect(200);
  });

  it('describes the default model on /info, named after its directory', async () => {
    const res = await request(app.getHttpServer()).get('/info').expect(200);
    assert.equal(res.body.model_id, 'demo-tiny');
    assert.equal(res.body.max_total_tokens, 2048);
    assert.equal(res.body.version, JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
  });

  it('refuses unknown and bad flags by name', () => {
    assert.throws(
      () => readApiConfig(['--bogus', '1'], {}),
      (err: unknown) => err instanceof ConfigError && /--bogus/.test(err.message),
    );
    assert.throws(() => readApiConfig(['--port', '99999'], {}), /--port must be a port number/);
    assert.throws(() => readApiConfig([], { SWITCHYARD_PORT: 'http' }), /--port must be a port number/);
    assert.equal(
      readApiConfig(['--model-id', 'models/demo-tiny', '--model-name', 'tiny'], {}, REPO_ROOT).modelName,
      'tiny',
    );
  });
});
