/**
 * Keeps the OpenAPI document in step with the controllers: every route Nest would serve (read from the
 * controllers' decorator metadata) is documented with its method, nothing else is, every operation has a
 * summary and responses, every `$ref` resolves; and the docs page escapes what it renders.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestMethod } from '@nestjs/common';
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
  DocsController,
];

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function joinPath(...parts: string[]): string {
  const path = `/${parts.join('/')}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return path === '' ? '/' : path;
}

/** `METHOD /path` for every route the controllers declare, from Nest's metadata. */
function controllerRoutes(): string[] {
  const routes: string[] = [];
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
      for (const p of Array.isArray(path) ? path : [path]) {
        routes.push(`${RequestMethod[method].toLowerCase()} ${joinPath(base as string, p)}`);
      }
    }
  }
  return routes.sort();
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

const doc = buildOpenApiDocument({ version: '1.2.3', defaultModel: 'demo-small' });

describe('the OpenAPI document', () => {
  it('finds the routes in the controllers', () => {
    const routes = controllerRoutes();
    // a sanity check of the discovery itself: the joins of '' and '/' paths, and a controller prefix
    for (const route of ['post /', 'post /generate', 'get /v1/models', 'get /api-doc/openapi.json']) {
      assert.ok(routes.includes(route), `${route} among ${routes.join(', ')}`);
    }
    assert.equal(new Set(routes).size, routes.length, 'no route is declared twice');
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
    assert.doesNotMatch(html, /<script|<link|\bsrc=|@import|url\(/i);
    assert.doesNotMatch(html, /https?:\/\//);
  });

  it('escapes every text it renders', () => {
    const hostile = '<script>alert("x")</script>';
    const html = renderDocsPage({
      openapi: '3.1.0',
      info: { title: hostile, version: hostile, description: `\`${hostile}\`` },
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
      components: { schemas: { [hostile]: { description: hostile, type: 'string' } } },
    });
    assert.ok(!html.includes('<script'), 'no `<script` in the page');
    assert.ok(!html.includes('"x")'), 'quotes are escaped too');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;'));
  });
});
