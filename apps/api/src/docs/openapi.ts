/**
 * The OpenAPI 3.1 document, generated at start-up from the controllers: Nest's route metadata gives each
 * operation's method and path, the auth guard's marks its security, and `@ApiRoute` its zod schemas, responses
 * and errors. Nothing here restates a field: schemas come from the same zod declarations the routes parse with.
 */
import 'reflect-metadata';
import { RequestMethod, Type } from '@nestjs/common';
import { OpenAPIRegistry, OpenApiGeneratorV31, RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ID_PATTERN } from '@switchyard/protocol';
import { Public, RequireScope } from '../auth/auth.guard';
import { API_ROUTE, ApiRouteSpec, HEADERS, TAGS } from './api-route';
import { errorCatalog, errorResponse, errorSchemas, Family } from './error-responses';

/** What the auth guard asks of a route: no key, or a key with this scope. */
export type Access = 'public' | 'inference' | 'admin';

export interface DocumentedRoute {
  method: Lowercase<keyof typeof RequestMethod>;
  /** As OpenAPI writes it: `/a/{id}`. */
  path: string;
  access: Access;
  handler: string;
  spec: ApiRouteSpec | undefined;
}

const PUBLIC_KEY = Public().KEY;
const SCOPE_KEY = RequireScope('admin').KEY;
const API_KEY = 'ApiKey';

/** A Nest path as OpenAPI writes it: `/a/:id` is `/a/{id}`. */
export function openApiPath(...parts: string[]): string {
  const path = `/${parts.join('/')}`
    .replace(/\/+/g, '/')
    .replace(/(.)\/$/, '$1')
    .replace(/:([A-Za-z0-9_]+)/g, '{$1}');
  return path === '' ? '/' : path;
}

/** Every route the controllers declare, from Nest's metadata, with the key it needs and its `@ApiRoute`. */
export function declaredRoutes(controllers: Type[]): DocumentedRoute[] {
  const routes: DocumentedRoute[] = [];
  for (const controller of controllers) {
    const base = Reflect.getMetadata('path', controller) as string | string[] | undefined;
    if (typeof base !== 'string') throw new Error(`${controller.name} must be a @Controller with one path`);
    const proto = controller.prototype as Record<string, unknown>;
    for (const key of Object.getOwnPropertyNames(proto)) {
      const handler = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
      if (key === 'constructor' || typeof handler !== 'function') continue;
      const path = Reflect.getMetadata('path', handler) as string | string[] | undefined;
      const method = Reflect.getMetadata('method', handler) as RequestMethod | undefined;
      if (path === undefined || method === undefined) continue;
      // as the guard reads them: the handler's mark, else the controller's
      const mark = (metadataKey: string): unknown =>
        (Reflect.getMetadata(metadataKey, handler) as unknown) ??
        (Reflect.getMetadata(metadataKey, controller) as unknown);
      const access: Access = mark(PUBLIC_KEY) === true ? 'public' : mark(SCOPE_KEY) === 'admin' ? 'admin' : 'inference';
      for (const p of Array.isArray(path) ? path : [path]) {
        routes.push({
          method: RequestMethod[method].toLowerCase() as DocumentedRoute['method'],
          path: openApiPath(base, p),
          access,
          handler: `${controller.name}.${key}`,
          spec: Reflect.getMetadata(API_ROUTE, handler) as ApiRouteSpec | undefined,
        });
      }
    }
  }
  return routes;
}

/** `XRequestId` is the header `x-request-id`. */
const headerName = (component: string) =>
  component
    .replace(/([a-z])([A-Z])/g, '$1-$2')
    .replace(/^X([A-Z])/, 'X-$1')
    .toLowerCase();

function family(path: string): Family {
  if (path.startsWith('/v1/')) return 'OpenAi';
  if (path.startsWith('/admin/')) return 'Admin';
  return 'Tgi';
}

/** The document for these routes; throws for a route with no `@ApiRoute`, so an undocumented route cannot ship. */
export function buildOpenApiDocument(routes: DocumentedRoute[], info: { version: string; defaultModel: string }) {
  const undocumented = routes.filter((r) => !r.spec).map((r) => `${r.method.toUpperCase()} ${r.path} (${r.handler})`);
  if (undocumented.length > 0) throw new Error(`routes without @ApiRoute: ${undocumented.join(', ')}`);

  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', API_KEY, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'sy-...',
    description:
      'An API key, sent as `Authorization: Bearer <key>`. Keys look like `sy-` and 43 more characters: ' +
      '`POST /admin/keys` makes them, and the first start makes an admin key when `SWITCHYARD_ADMIN_KEY` is ' +
      'not set (that variable is a key with every scope too). A requirement names the scope a route needs: ' +
      '`inference` for the generation, tokenize and models routes, `admin` for /admin; an `admin` key may use ' +
      'every route. A key may be limited to `allowed_models` and to `rpm_limit` requests and `tpm_limit` ' +
      'tokens a minute. `--disable-auth` lets every request in, as an admin.',
  });
  for (const [name, value] of Object.entries(HEADERS)) registry.registerComponent('headers', name, value);
  registry.registerComponent('parameters', 'XRequestId', {
    name: 'x-request-id',
    in: 'header',
    required: false,
    description: 'Your own request id (1-128 of `A-Za-z0-9_.:-`), sent back in `x-request-id`.',
    schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' },
  });
  registry.registerComponent('parameters', 'XModel', {
    name: 'x-model',
    in: 'header',
    required: false,
    description: 'The model to use, when the body has no `model`.',
    schema: { type: 'string', pattern: ID_PATTERN.source, examples: [info.defaultModel] },
  });
  for (const [name, schema] of Object.entries(errorSchemas())) registry.registerComponent('schemas', name, schema);
  for (const f of ['Tgi', 'OpenAi', 'Admin'] as const) {
    for (const [name, spec] of Object.entries(errorCatalog(f))) {
      registry.registerComponent('responses', `${f}${name}`, errorResponse(f, spec));
    }
  }

  for (const route of routes) {
    const spec = route.spec!;
    const responses: RouteConfig['responses'] = {};
    for (const name of spec.errors ?? []) {
      const catalog = errorCatalog(family(route.path));
      if (!catalog[name]) throw new Error(`${route.handler}: ${family(route.path)} has no error ${name}`);
      responses[String(catalog[name].status)] = { $ref: `#/components/responses/${family(route.path)}${name}` };
    }
    for (const [status, { headers = [], ...response }] of Object.entries(spec.responses)) {
      responses[status] = {
        ...response,
        headers: Object.fromEntries(
          ['XRequestId', ...headers].map((h) => [headerName(h), { $ref: `#/components/headers/${h}` }]),
        ),
      };
    }
    registry.registerPath({
      method: route.method as RouteConfig['method'],
      path: route.path,
      tags: [TAGS[spec.tag].name],
      summary: spec.summary,
      description: spec.description,
      operationId: spec.operationId,
      security: route.access === 'public' ? [] : [{ [API_KEY]: [route.access] }],
      parameters: [
        ...(spec.modelHeader ? [{ $ref: '#/components/parameters/XModel' }] : []),
        { $ref: '#/components/parameters/XRequestId' },
      ],
      request: {
        params: spec.params,
        query: spec.query,
        body: spec.body && { required: true, content: { 'application/json': { schema: spec.body } } },
      },
      responses,
    });
  }

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Switchyard',
      version: info.version,
      ...{ summary: 'Multi-model LLM serving with the text-generation-inference and OpenAI APIs.' },
      description:
        "Switchyard serves the models of its registry over Hugging Face text-generation-inference's HTTP API and " +
        `OpenAI's. A request that names no model gets the default one, \`${info.defaultModel}\`, and may name ` +
        '`fallbacks` to try when its model cannot serve it. Every route but `/health`, `/info`, `/metrics` and the ' +
        'documentation needs an API key, sent as `Authorization: Bearer <key>`: with the `inference` scope for ' +
        'the generation routes, `admin` for /admin. Bodies are parsed as JSON whatever their content type, up to ' +
        '`--payload-limit` bytes. Every response carries `x-request-id`. Errors are `{error, error_type}` on TGI, ' +
        'service and admin routes and `{error: {message, type, param, code}}` under /v1.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/' }],
    security: [{ [API_KEY]: ['inference'] }],
    tags: Object.values(TAGS).map((t) => ({ ...t })),
  });
}

/** A JSON body whose shape the document gives as any JSON value (the docs' own document). */
export const AnyObject = z.record(z.string(), z.unknown());
