/**
 * The generated OpenAPI document against the router Nest really builds: the API's own controllers are mounted
 * (their services replaced by empty stand-ins: no handler runs) and Express's route table is walked. Every
 * route is documented, with a request schema where it takes a body and a response schema, the key the auth
 * guard asks for, and resolvable references; the document validates as OpenAPI 3.1; a route without
 * `@ApiRoute` stops the start.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Controller, Get, INestApplication, Module, Type } from '@nestjs/common';
import { ModulesContainer, NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { DocsController } from './docs.controller';
import { buildOpenApiDocument, declaredRoutes, openApiPath } from './openapi';

type Json = Record<string, unknown>;

const CONFIG = { version: '0.0.0-test', modelName: 'demo-small' } as ApiConfig;

/** The API's controllers, as its module declares them. */
const CONTROLLERS = AppModule.forRoot(CONFIG).controllers as Type[];

/** A module of the API's controllers whose every dependency is an empty object. */
function controllersOnly(): Type {
  const tokens = new Set<unknown>();
  for (const controller of CONTROLLERS) {
    for (const t of (Reflect.getMetadata('design:paramtypes', controller) as unknown[] | undefined) ?? []) {
      tokens.add(t);
    }
    const injected = (Reflect.getMetadata('self:paramtypes', controller) as { param: unknown }[] | undefined) ?? [];
    for (const { param } of injected) tokens.add(param);
  }
  tokens.delete(Object);
  tokens.delete(ModulesContainer); // Nest's own: the docs read the real one
  const providers = [...tokens].map((token) => ({
    provide: token as string,
    useValue: token === API_CONFIG ? CONFIG : {},
  }));
  @Module({ controllers: CONTROLLERS, providers: providers.filter((p) => p.provide !== undefined) })
  class ControllersOnly {}
  return ControllersOnly;
}

interface ExpressLayer {
  route?: { path: string; methods: Record<string, boolean> };
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function documentRoutes(doc: Json): string[] {
  const routes: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of Object.keys(item as Json)) if (HTTP_METHODS.includes(method)) routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

/** A `$ref`'s target, followed until it is not a reference. */
function resolve(root: Json, node: unknown): Json {
  let current = node as Json;
  for (let hops = 0; hops < 16 && typeof current?.$ref === 'string'; hops++) {
    const target = current.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((at, key) => (at && typeof at === 'object' ? (at as Json)[key] : undefined), root);
    assert.ok(target, `${String(current.$ref)} resolves`);
    current = target as Json;
  }
  return current;
}

function* refs(node: unknown): Generator<string> {
  if (Array.isArray(node)) for (const item of node) yield* refs(item);
  else if (node && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') yield value;
      else yield* refs(value);
    }
  }
}

// a real dynamic import: the validator is an ES module, and this file compiles to CommonJS
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a fixed body, so that tsc leaves import() alone
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;

describe('OpenAPI document', () => {
  let app: INestApplication;
  let doc: Json;
  let routerRoutes: string[];

  before(async () => {
    app = await NestFactory.create(controllersOnly(), { logger: false });
    await app.init();
    const router = (app.getHttpAdapter().getInstance() as { router: { stack: ExpressLayer[] } }).router;
    routerRoutes = router.stack
      .filter((layer) => layer.route)
      .flatMap((layer) => Object.keys(layer.route!.methods).map((m) => `${m} ${openApiPath(layer.route!.path)}`))
      .sort();
    doc = app.get(DocsController).openApi() as Json;
  });

  after(() => app?.close());

  it('documents every route Nest serves, and nothing else', () => {
    assert.ok(routerRoutes.length >= 25, `the router has the API's routes (${routerRoutes.length})`);
    assert.deepEqual(documentRoutes(doc), routerRoutes);
  });

  it('gives every operation a summary, an id, its request schema and a response schema', () => {
    const ids = new Set<string>();
    for (const route of documentRoutes(doc)) {
      const [method, path] = route.split(' ');
      const op = (doc.paths as Record<string, Json>)[path][method] as Json;
      assert.ok(typeof op.summary === 'string' && op.summary.length > 0, `${route} has a summary`);
      assert.ok(!ids.has(op.operationId as string), `${route}'s operationId is unique`);
      ids.add(op.operationId as string);
      const responses = op.responses as Record<string, Json>;
      const success = Object.keys(responses).filter((s) => s.startsWith('2'));
      assert.ok(success.length > 0, `${route} has a success response`);
      for (const status of success) {
        if (status === '204') continue;
        const content = responses[status].content as Record<string, Json> | undefined;
        if (path === '/docs/{asset}') continue; // files of several types
        assert.ok(content && Object.values(content).every((m) => m.schema), `${route} ${status} has a schema`);
      }
      for (const [status, response] of Object.entries(responses)) {
        const r = resolve(doc, response);
        assert.ok(typeof r.description === 'string', `${route} ${status} has a description`);
        if (!status.startsWith('2') && Number(status) >= 400 && route !== 'get /health') {
          const schema = (r.content as Record<string, Json>)['application/json'].schema as Json;
          const name = path.startsWith('/v1/') ? 'OpenAiError' : 'TgiError';
          assert.equal(schema.$ref, `#/components/schemas/${name}`, `${route} ${status} is in its family's shape`);
        }
      }
      const declared = declaredRoutes(CONTROLLERS).find((r) => `${r.method} ${r.path}` === route)!;
      if (declared.spec?.body) {
        const body = op.requestBody as Json;
        assert.ok((body.content as Record<string, Json>)['application/json'].schema, `${route} has a body schema`);
      }
    }
  });

  it('names the key each route needs, as the auth guard reads it', () => {
    const expected = { public: [], inference: [{ ApiKey: ['inference'] }], admin: [{ ApiKey: ['admin'] }] };
    for (const route of declaredRoutes(CONTROLLERS)) {
      const op = (doc.paths as Record<string, Record<string, Json>>)[route.path][route.method];
      assert.deepEqual(op.security, expected[route.access], `${route.method} ${route.path}`);
      if (route.path.startsWith('/admin')) assert.equal(route.access, 'admin', `${route.path} needs admin`);
    }
    for (const path of ['/health', '/info', '/metrics', '/docs', '/openapi.json']) {
      assert.deepEqual((doc.paths as Record<string, Record<string, Json>>)[path].get.security, [], path);
    }
  });

  it('resolves every reference', () => {
    for (const ref of refs(doc)) resolve(doc, { $ref: ref });
  });

  it('documents limits and examples from the schemas the routes parse with', () => {
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    const parameters = schemas.GenerateParameters.properties as Record<string, Json>;
    assert.equal(parameters.temperature.exclusiveMinimum, 0);
    assert.equal(parameters.top_p.exclusiveMaximum, 1);
    assert.equal(parameters.frequency_penalty.maximum, 2);
    const generate = schemas.GenerateRequest;
    assert.deepEqual(generate.required, ['inputs']);
    assert.ok(Array.isArray(generate.examples) && generate.examples.length > 0);
    assert.equal((generate.properties as Record<string, Json>).fallbacks.maxItems, 8);
    const paths = doc.paths as Record<string, Record<string, Json>>;
    const headers = Object.keys((paths['/generate'].post.responses as Record<string, Json>)['200'].headers as Json);
    for (const name of ['x-request-id', 'x-served-model', 'x-queue-time', 'x-generated-tokens']) {
      assert.ok(headers.includes(name), `${name} in ${headers.join(', ')}`);
    }
  });

  it('validates as OpenAPI 3.1', async () => {
    const { Validator } = (await importEsm('@seriousme/openapi-schema-validator')) as {
      Validator: new () => {
        validate(doc: unknown): Promise<{ valid: boolean; errors?: unknown }>;
        version: string;
      };
    };
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(validator.version, '3.1');
    assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  });

  it('refuses to build with a route that has no @ApiRoute', () => {
    @Controller('x')
    class Undocumented {
      @Get('y')
      y(): string {
        return '';
      }
    }
    assert.throws(
      () => buildOpenApiDocument(declaredRoutes([...CONTROLLERS, Undocumented]), { version: 'x', defaultModel: 'y' }),
      /routes without @ApiRoute: GET \/x\/y \(Undocumented\.y\)/,
    );
  });
});
