/**
 * The API's documentation, public: `GET /openapi.json` (and `GET /api-doc/openapi.json`, TGI's path for it),
 * generated once at start-up from the controllers, and `GET /docs`, Swagger UI over it, served from the
 * `swagger-ui-dist` package with no external resource. Start-up fails if a route has no `@ApiRoute`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Header, Inject, OnApplicationBootstrap, Param, Res, Type } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { Response } from 'express';
import { absolutePath } from 'swagger-ui-dist';
import { z } from 'zod';
import { Public } from '../auth/auth.guard';
import { ApiError } from '../common/api-error';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { ApiRoute } from './api-route';
import { AnyObject, buildOpenApiDocument, declaredRoutes } from './openapi';

/** Swagger UI's files that the page loads, and their types. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
  'favicon-32x32.png': 'image/png',
};

/** Scripts and styles from this origin only; Swagger UI sets inline styles and shows data: images. */
const ASSET_NAMES = ['init.js', ...Object.keys(ASSETS)] as [string, ...string[]];

const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Switchyard API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

const INIT = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: 'StandaloneLayout',
});
`;

const documentResponse = {
  200: {
    description: 'The document.',
    content: { 'application/json': { schema: AnyObject.meta({ description: 'An OpenAPI 3.1 document.' }) } },
  },
};

@Public()
@Controller()
export class DocsController implements OnApplicationBootstrap {
  private document: unknown = null;
  private readonly assets = new Map<string, Buffer>();

  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly modules: ModulesContainer,
  ) {
    const dir = absolutePath();
    for (const name of Object.keys(ASSETS)) this.assets.set(name, readFileSync(join(dir, name)));
    this.assets.set('init.js', Buffer.from(INIT));
  }

  /** Built once every controller is known: a route without `@ApiRoute` stops the start here. */
  onApplicationBootstrap(): void {
    const controllers = new Set<Type>();
    for (const module of this.modules.values()) {
      for (const wrapper of module.controllers.values()) controllers.add(wrapper.metatype as Type);
    }
    this.document = buildOpenApiDocument(declaredRoutes([...controllers]), {
      version: this.config.version,
      defaultModel: this.config.modelName,
    });
  }

  @Get('docs')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', CONTENT_SECURITY_POLICY)
  @ApiRoute({
    tag: 'docs',
    summary: 'This documentation, as a page',
    description: 'Swagger UI over `GET /openapi.json`, served from this origin with no external resource.',
    operationId: 'docs',
    responses: { 200: { description: 'The page.', content: { 'text/html': { schema: z.string() } } } },
  })
  docs(): string {
    return PAGE;
  }

  @Get('docs/:asset')
  @ApiRoute({
    tag: 'docs',
    summary: "The documentation page's scripts and styles",
    description: `Swagger UI's files: ${ASSET_NAMES.map((a) => `\`${a}\``).join(', ')}.`,
    operationId: 'docsAsset',
    params: z.object({ asset: z.enum(ASSET_NAMES) }),
    responses: { 200: { description: 'The file.' } },
    errors: ['NotFound'],
  })
  asset(@Param('asset') name: string, @Res() res: Response): void {
    const body = this.assets.get(name);
    if (!body) throw new ApiError(404, 'not_found', `no such documentation asset: ${name.slice(0, 64)}`);
    res
      .status(200)
      .set({
        'content-type': ASSETS[name] ?? 'text/javascript; charset=utf-8',
        'cache-control': 'public, max-age=3600',
      })
      .send(body);
  }

  @Get('openapi.json')
  @ApiRoute({
    tag: 'docs',
    summary: 'The OpenAPI document',
    description: "This API's OpenAPI 3.1 document, generated at start-up from the routes' own schemas.",
    operationId: 'openApi',
    responses: documentResponse,
  })
  openApi(): unknown {
    return this.document;
  }

  @Get('api-doc/openapi.json')
  @ApiRoute({
    tag: 'docs',
    summary: 'The OpenAPI document, at TGI’s path',
    description: 'The same document as `GET /openapi.json`, where TGI serves its own.',
    operationId: 'openApiTgi',
    responses: documentResponse,
  })
  openApiTgi(): unknown {
    return this.document;
  }
}
