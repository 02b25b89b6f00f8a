/**
 * Keeps the OpenAPI document in step with the controllers: every route Nest would serve (read from the
 * controllers' decorator metadata) is documented with its method, nothing else is, each needs the key the auth
 * guard asks for (none for `@Public()`, the `admin` scope for `@RequireScope('admin')`, `inference` otherwise),
 * every operation has a summary and responses, every `$ref` resolves; and the docs page escapes what it renders.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestMethod } from '@nestjs/common';
import { KeysController } from '../admin/keys.controller';
import { ModelsAdminController } from '../admin/models.controller';
import { UsageController } from '../admin/usage.controller';
import { WorkersController } from '../admin/workers.controller';
import { Public, RequireScope } from '../auth/auth.guard';
import type { ApiConfig } from '../config/api-config';
import { HealthController } from '../health/health.controller';
import { InfoController } from '../info/info.controller';
import { MetricsController } from '../metrics/metrics.controller';
import { CompletionsController } from '../openai/completions.controller';
import { ModelsController } from '../openai/models.controller';
import { GenerateController } from '../tgi/generate.controller';
import { TokenizeController } from '../tgi/tokenize.controller';
import { DocsController, renderDocsPage } from './docs.controller';
import { buildOpenApiDocument } from './openapi';

type Json = Record<string, unknown>;

const CONTROLLERS: (new (...args: never[]) => unknown)[] = [
  GenerateController,
  TokenizeController,
  InfoController,
  HealthController,
  MetricsController,
  CompletionsController,
  ModelsController,
  KeysController,
  ModelsAdminController,
  WorkersController,
  UsageController,
  DocsController,
];

/** The metadata keys the auth guard reads, from its own decorators. */
const PUBLIC_KEY = Public().KEY;
const SCOPE_KEY = RequireScope('admin').KEY;

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** A Nest path as OpenAPI writes it: `/a/:id` is `/a/{id}`. */
function joinPath(...parts: string[]): string {
  const path = `/${parts.join('/')}`
    .replace(/\/+/g, '/')
    .replace(/(.)\/$/, '$1')
    .replace(/:([A-Za-z0-9_]+)/g, '{$1}');
  return path === '' ? '/' : path;
}

/** What the auth guard asks of a route: no key, or a key with this scope. */
type Access = 'public' | 'inference' | 'admin';

/** `METHOD /path` for every route the controllers declare, with the key it needs, from Nest's metadata. */
function declaredRoutes(): Map<string, Access> {
  const routes = new Map<string, Access>();
  for (const controller of CONTROLLERS) {
    const base = Reflect.getMetadata('path', controller) as string | string[] | undefined;
    assert.equal(typeof base, 'string', `${controller.name} is a @Controller with one path`);
    const proto = controller.prototype as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor') continue;
      const handler = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
      if (typeof handler !== 'function') continue;
      const path = Reflect.getMetadata('path', handler) as string | string[] | undefined;
      const method = Reflect.getMetadata('method', handler) as RequestMethod | undefined;
      if (path === undefined || method === undefined) continue;
      // as the guard reads them: the handler's mark, else the controller's
      const mark = (metadataKey: string): unknown =>
        (Reflect.getMetadata(metadataKey, handler) as unknown) ??
        (Reflect.getMetadata(metadataKey, controller) as unknown);
      const access: Access = mark(PUBLIC_KEY) === true ? 'public' : mark(SCOPE_KEY) === 'admin' ? 'admin' : 'inference';
      for (const p of Array.isArray(path) ? path : [path]) {
        const route = `${RequestMethod[method].toLowerCase()} ${joinPath(base as string, p)}`;
        assert.ok(!routes.has(route), `${route} is declared once`);
        routes.set(route, access);
      }
    }
  }
  return routes;
}

function controllerRoutes(): string[] {
  return [...declaredRoutes().keys()].sort();
}

function documentRoutes(doc: Json): string[] {
  const routes: string[] = [];
  for (const [path, item] of Object.entries(doc.paths as Json)) {
    for (const method of Object.keys(item as Json)) {
      if (HTTP_METHODS.includes(method)) routes.push(`${method} ${path}`);
    }
  }
  return routes.sort();
}

function operations(doc: Json): [string, Json][] {
  return documentRoutes(doc).map((route) => {
    const [method, path] = route.split(' ');
    return [route, (doc.paths as Record<string, Json>)[path][method] as Json];
  });
}

/** A `$ref`'s target in the document, followed until it is not a reference; a reference's own keys win. */
function resolve(root: Json, node: unknown): Json {
  let current = node as Json;
  for (let hops = 0; hops < 16 && typeof current?.$ref === 'string'; hops++) {
    const { $ref, ...own } = current;
    const target = ($ref as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((at, key) => (at && typeof at === 'object' ? (at as Json)[key] : undefined), root);
    current = { ...(target as Json), ...own };
  }
  return current;
}

const doc = buildOpenApiDocument({ version: '1.2.3', defaultModel: 'demo-small' });
const res = (node: unknown): Json => resolve(doc, node);

const GENERATION_ROUTES = [
  'post /',
  'post /generate',
  'post /generate_stream',
  'post /v1/chat/completions',
  'post /v1/completions',
];

describe('the OpenAPI document', () => {
  it('finds the routes in the controllers', () => {
    const routes = controllerRoutes();
    // a sanity check of the discovery itself: the joins of '' and '/' paths, and a controller prefix
    // and of path parameters and the auth marks
    for (const route of [
      'post /',
      'post /generate',
      'get /v1/models',
      'get /api-doc/openapi.json',
      'delete /admin/keys/{id}',
      'post /admin/models/{id}/load',
    ]) {
      assert.ok(routes.includes(route), `${route} among ${routes.join(', ')}`);
    }
    const access = declaredRoutes();
    assert.equal(access.get('get /health'), 'public');
    assert.equal(access.get('get /docs'), 'public');
    assert.equal(access.get('get /admin/usage'), 'admin');
    assert.equal(access.get('post /generate'), 'inference');
  });

  it('documents every route the controllers declare, with its method', () => {
    const documented = new Set(documentRoutes(doc));
    const missing = controllerRoutes().filter((route) => !documented.has(route));
    assert.deepEqual(missing, [], 'routes served but not documented');
  });

  it('documents no route that no controller serves', () => {
    const served = new Set(controllerRoutes());
    const extra = documentRoutes(doc).filter((route) => !served.has(route));
    assert.deepEqual(extra, [], 'routes documented but not served');
  });

  it('gives every operation a summary, responses and a unique operationId', () => {
    const ids = new Set<string>();
    for (const [route, op] of operations(doc)) {
      assert.equal(typeof op.summary, 'string', `${route} has a summary`);
      assert.ok((op.summary as string).length > 0, `${route} has a summary`);
      assert.ok(op.responses && Object.keys(op.responses as Json).length > 0, `${route} has a response`);
      assert.equal(typeof op.operationId, 'string', `${route} has an operationId`);
      assert.ok(!ids.has(op.operationId as string), `${route}: operationId ${String(op.operationId)} is unique`);
      ids.add(op.operationId as string);
    }
  });

  it('asks each route for the key the auth guard asks for', () => {
    const schemes = (doc.components as Json).securitySchemes as Json;
    const scheme = schemes.ApiKey as Json;
    assert.equal(scheme.type, 'http');
    assert.equal(scheme.scheme, 'bearer');
    assert.match(String(scheme.description), /Authorization: Bearer <key>/);
    assert.match(String(scheme.bearerFormat), /^sy-/);
    assert.deepEqual(doc.security, [{ ApiKey: ['inference'] }], 'a key with `inference` by default');
    const routes = [...declaredRoutes()];
    assert.deepEqual(
      routes
        .filter(([, access]) => access === 'public')
        .map(([route]) => route)
        .sort(),
      ['get /api-doc/openapi.json', 'get /docs', 'get /health', 'get /info', 'get /metrics'],
    );
    for (const [route, access] of routes) {
      const [method, path] = route.split(' ');
      const op = (doc.paths as Record<string, Json>)[path][method] as Json;
      const expected = access === 'public' ? [] : [{ ApiKey: [access] }];
      assert.deepEqual(op.security ?? doc.security, expected, `${route} needs ${access}`);
      const statuses = Object.keys(op.responses as Json);
      for (const status of ['401', '403']) {
        assert.equal(statuses.includes(status), access !== 'public', `${route} documents ${status} iff it needs a key`);
      }
    }
  });

  it('declares every path parameter, and only those', () => {
    for (const [route, op] of operations(doc)) {
      const path = route.split(' ')[1];
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = ((op.parameters ?? []) as unknown[]).map(res).filter((p) => p.in === 'path');
      assert.deepEqual(declared.map((p) => p.name).sort(), inPath, `${route}'s path parameters`);
      for (const p of declared) assert.equal(p.required, true, `${route}: ${String(p.name)} is required`);
    }
  });

  it('takes `fallbacks` on the generation routes, and documents the key errors and rate limits there', () => {
    for (const route of GENERATION_ROUTES) {
      const [method, path] = route.split(' ');
      const op = (doc.paths as Record<string, Json>)[path][method] as Json;
      const body = res((((op.requestBody as Json).content as Json)['application/json'] as Json).schema);
      const fallbacks = res((body.properties as Json).fallbacks);
      assert.equal(fallbacks.maxItems, 8, `${route}: at most 8 fallbacks`);
      assert.match(String(fallbacks.description), /x-served-model/);
      const responses = op.responses as Json;
      const errorTypes = (status: string): string[] => {
        const media = (res(responses[status]).content as Json)['application/json'] as Json;
        const examples = media.examples
          ? Object.values(media.examples as Json).map((e) => (e as Json).value)
          : [media.example];
        return examples.map((e) => {
          const body = e as Json;
          return String(typeof body.error === 'object' ? (body.error as Json).code : body.error_type);
        });
      };
      assert.deepEqual(errorTypes('401'), ['unauthorized'], `${route}: 401`);
      assert.deepEqual(errorTypes('403').sort(), ['forbidden', 'model_not_allowed'], `${route}: 403`);
      assert.deepEqual(errorTypes('429').sort(), ['overloaded', 'rate_limited'], `${route}: 429`);
      assert.ok((res(responses['429']).headers as Json)['retry-after'], `${route}: 429 has Retry-After`);
    }
  });

  it("gives error examples in their family's shape, with known types", () => {
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    const tgiTypes = ((schemas.TgiError.properties as Json).error_type as Json).enum as string[];
    const openAiError = (schemas.OpenAiError.properties as Json).error as Json;
    const openAiTypes = ((openAiError.properties as Json).type as Json).enum as string[];
    const responses = (doc.components as Json).responses as Record<string, Json>;
    for (const [name, response] of Object.entries(responses)) {
      const media = (response.content as Json)['application/json'] as Json;
      const examples = media.examples
        ? Object.values(media.examples as Json).map((e) => (e as Json).value)
        : [media.example];
      assert.ok(examples.length > 0, `${name} has an example`);
      for (const example of examples as Json[]) {
        if (name.startsWith('OpenAi')) {
          const error = example.error as Json;
          assert.ok(tgiTypes.includes(String(error.code)), `${name}: code ${String(error.code)}`);
          assert.ok(openAiTypes.includes(String(error.type)), `${name}: type ${String(error.type)}`);
        } else {
          assert.ok(tgiTypes.includes(String(example.error_type)), `${name}: error_type ${String(example.error_type)}`);
        }
      }
    }
  });

  it('documents the admin bodies with their fields', () => {
    const schemas = (doc.components as Json).schemas as Record<string, Json>;
    const fields = (name: string) => Object.keys(schemas[name].properties as Json).sort();
    assert.deepEqual(fields('CreateApiKeyRequest'), [
      'allowed_models',
      'expires_at',
      'name',
      'rpm_limit',
      'scopes',
      'tpm_limit',
    ]);
    assert.ok(fields('CreatedApiKey').includes('key'));
    assert.ok(
      !fields('ApiKey').includes('key') && !fields('ApiKey').some((f) => /hash/.test(f)),
      'no plaintext, no hash',
    );
    assert.deepEqual(fields('CreateModelRequest'), [
      'default_parameters',
      'enabled',
      'fallbacks',
      'id',
      'keep_alive',
      'max_input_tokens',
      'max_total_tokens',
      'path',
      'pinned',
      'quantize',
    ]);
    assert.deepEqual(
      fields('UpdateModelRequest'),
      fields('CreateModelRequest').filter((f) => f !== 'id'),
    );
    const usage = (doc.paths as Record<string, Json>)['/admin/usage'].get as Json;
    assert.deepEqual(
      (usage.parameters as unknown[])
        .map(res)
        .filter((p) => p.in === 'query')
        .map((p) => p.name),
      ['from', 'to', 'group_by'],
    );
    const statuses = (route: string) => {
      const [method, path] = route.split(' ');
      return Object.keys(((doc.paths as Record<string, Json>)[path][method] as Json).responses as Json);
    };
    assert.ok(statuses('post /admin/keys').includes('201'));
    assert.ok(
      statuses('delete /admin/keys/{id}').includes('204') && statuses('delete /admin/keys/{id}').includes('404'),
    );
    assert.ok(statuses('post /admin/models').includes('409') && statuses('post /admin/models').includes('422'));
    assert.ok(statuses('delete /admin/models/{id}').includes('409'));
    assert.ok(statuses('post /admin/models/{id}/load').includes('202'));
  });

  it('is OpenAPI 3.1 with the version, and names the default model', () => {
    assert.match(String(doc.openapi), /^3\.1\./);
    const info = doc.info as Json;
    assert.equal(info.version, '1.2.3');
    assert.match(String(info.description), /demo-small/);
  });

  it('resolves every $ref', () => {
    const broken: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node === null || typeof node !== 'object') return;
      const { $ref } = node as Json;
      if (typeof $ref === 'string') {
        const target = $ref
          .replace(/^#\//, '')
          .split('/')
          .reduce<unknown>((at, key) => (at && typeof at === 'object' ? (at as Json)[key] : undefined), doc);
        if (!$ref.startsWith('#/') || target === undefined) broken.push($ref);
      }
      Object.values(node as Json).forEach(walk);
    };
    walk(doc);
    assert.deepEqual(broken, []);
  });
});

describe('DocsController', () => {
  const config = { version: '9.9.9', modelName: 'tiny' } as ApiConfig;
  const controller = new DocsController(config);

  it('serves the document built from the config', () => {
    const served = controller.openApi();
    assert.equal((served.info as Json).version, '9.9.9');
    assert.match(JSON.stringify(served), /tiny/);
    assert.deepEqual(documentRoutes(served), documentRoutes(doc));
  });

  it('renders every operation, its request fields and responses, with no external resources', () => {
    const html = controller.docs();
    assert.match(html, /^<!doctype html>/);
    for (const [route, op] of operations(controller.openApi())) {
      const [method, path] = route.split(' ');
      assert.ok(html.includes(`<code>${path}</code>`), `${route} is on the page`);
      assert.ok(html.includes(`>${method.toUpperCase()}</span>`), `${method} is on the page`);
      assert.ok(html.includes(String(op.summary)), `${route}'s summary is on the page`);
    }
    assert.ok(html.includes('<code>parameters.max_new_tokens</code>'), 'nested request fields are listed');
    assert.ok(html.includes('<code>messages[].role</code>'), 'fields of array items are listed');
    assert.ok(html.includes('>422</span>'), 'error statuses are listed');
    assert.ok(html.includes('id="security-ApiKey"'), 'the security scheme has its section');
    assert.ok(html.includes('Authentication:</strong> none.'), 'public routes say so');
    assert.ok(html.includes('ApiKey</a> with <code>admin</code>'), 'admin routes name their scope');
    assert.ok(html.includes('ApiKey</a> with <code>inference</code>'), 'inference routes name theirs');
    assert.doesNotMatch(html, /<script|<link|\bsrc=|@import|url\(/i);
    assert.doesNotMatch(html, /https?:\/\//);
  });

  it('escapes every text it renders', () => {
    const hostile = '<script>alert("x")</script>';
    const html = renderDocsPage({
      openapi: '3.1.0',
      info: { title: hostile, version: hostile, description: `\`${hostile}\`` },
      security: [{ [hostile]: [hostile] }],
      tags: [{ name: hostile, description: hostile }],
      paths: {
        [`/a/${hostile}`]: {
          get: {
            tags: [hostile],
            summary: hostile,
            description: hostile,
            parameters: [{ name: hostile, in: 'header', description: hostile, schema: { type: 'string' } }],
            requestBody: {
              content: {
                [hostile]: {
                  schema: {
                    type: 'object',
                    properties: { [hostile]: { type: 'string', description: hostile, default: hostile } },
                  },
                },
              },
            },
            responses: {
              [hostile]: {
                description: hostile,
                headers: { [hostile]: { description: hostile, schema: { type: 'string' } } },
                content: { 'application/json': { schema: { enum: [hostile], const: hostile } } },
              },
            },
          },
        },
      },
      components: {
        schemas: { [hostile]: { description: hostile, type: 'string' } },
        securitySchemes: {
          [hostile]: { type: hostile, scheme: hostile, bearerFormat: hostile, description: hostile },
        },
      },
    });
    assert.ok(!html.includes('<script'), 'no `<script` in the page');
    assert.ok(!html.includes('"x")'), 'quotes are escaped too');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  });
});
