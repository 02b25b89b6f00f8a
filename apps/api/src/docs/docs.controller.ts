/**
 * The API's documentation: `GET /api-doc/openapi.json` (the OpenAPI document, at TGI's path for it) and
 * `GET /docs`, the same document rendered server-side as one self-contained HTML page: no scripts, no external
 * styles or fonts, every text from the document escaped. Both are built once, when the controller is made, and
 * both are public: the page shows which key each route needs.
 */
import { Controller, Get, Header, Inject } from '@nestjs/common';
import { API_CONFIG, ApiConfig } from '../config/api-config';
import { buildOpenApiDocument } from './openapi';
import { Public } from '../auth/auth.guard';

type Json = Record<string, unknown>;

/** The page needs nothing but its own inline styles. */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** How deep nested fields are listed (`a.b[].c`). */
const MAX_FIELD_DEPTH = 4;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** Escaped text with its `code` spans set as code. */
function prose(text: unknown): string {
  if (typeof text !== 'string') return '';
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

function anchor(prefix: string, name: string): string {
  return `${prefix}-${name.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'root'}`;
}

/** Renders an OpenAPI 3.1 document as one HTML page. */
class PageRenderer {
  constructor(private readonly doc: Json) {}

  /** A `#/...` JSON pointer's target in the document. */
  private lookup(pointer: string): unknown {
    if (!pointer.startsWith('#/')) return undefined;
    return pointer
      .slice(2)
      .split('/')
      .map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce<unknown>((node, key) => (isObject(node) ? node[key] : undefined), this.doc);
  }

  /** The object a value stands for, `$ref`s followed; a reference's own keys (a description) win. */
  resolve(value: unknown): Json {
    let current = value;
    for (let hops = 0; hops < 16 && isObject(current) && typeof current.$ref === 'string'; hops++) {
      const { $ref, ...own } = current;
      const target = this.lookup($ref as string);
      current = isObject(target) ? { ...target, ...own } : own;
    }
    return isObject(current) ? current : {};
  }

  /** A schema's type, as HTML: component names link to their section. */
  typeLabel(raw: unknown): string {
    if (!isObject(raw)) return 'any';
    if (typeof raw.$ref === 'string') {
      const name = raw.$ref.split('/').pop() ?? raw.$ref;
      return raw.$ref.startsWith('#/components/schemas/')
        ? `<a href="#${escapeHtml(anchor('schema', name))}">${escapeHtml(name)}</a>`
        : escapeHtml(name);
    }
    if ('const' in raw) return escapeHtml(JSON.stringify(raw.const));
    if (Array.isArray(raw.enum)) return raw.enum.map((v) => escapeHtml(JSON.stringify(v))).join(' | ');
    const variants = raw.oneOf ?? raw.anyOf;
    if (Array.isArray(variants)) return variants.map((v) => this.typeLabel(v)).join(' | ');
    const types = Array.isArray(raw.type) ? raw.type : raw.type === undefined ? [] : [raw.type];
    if (types.length === 0) return 'any';
    return types
      .map((t) => {
        if (t !== 'array') return escapeHtml(String(t));
        const item = this.typeLabel(raw.items);
        return item.includes(' | ') ? `(${item})[]` : `${item}[]`;
      })
      .join(' | ');
  }

  private constraints(schema: Json): string[] {
    const out: string[] = [];
    const show = (label: string, key: string) => {
      if (schema[key] !== undefined) out.push(`${label} ${JSON.stringify(schema[key])}`);
    };
    show('default', 'default');
    show('>=', 'minimum');
    show('>', 'exclusiveMinimum');
    show('<=', 'maximum');
    show('<', 'exclusiveMaximum');
    show('format', 'format');
    show('min length', 'minLength');
    show('max length', 'maxLength');
    show('min items', 'minItems');
    show('max items', 'maxItems');
    show('unique items', 'uniqueItems');
    show('pattern', 'pattern');
    return out;
  }

  /** The schemas a field's own fields come from: itself, its items, its variants. */
  private nested(schema: Json): { schema: Json; suffix: string }[] {
    const out: { schema: Json; suffix: string }[] = [];
    if (isObject(schema.properties)) out.push({ schema, suffix: '' });
    if (isObject(schema.items)) {
      for (const inner of this.nested(this.resolve(schema.items))) out.push({ ...inner, suffix: `[]${inner.suffix}` });
    }
    for (const variant of [schema.oneOf, schema.anyOf]) {
      if (!Array.isArray(variant)) continue;
      for (const v of variant) out.push(...this.nested(this.resolve(v)));
    }
    return out;
  }

  /** Table rows for every field of a schema, nested fields as `a.b` and `a[].b`. */
  private fieldRows(raw: unknown, prefix = '', depth = 0): string[] {
    const rows: string[] = [];
    for (const { schema, suffix } of this.nested(this.resolve(raw))) {
      const properties = schema.properties as Json;
      const required = new Set(Array.isArray(schema.required) ? schema.required : []);
      const base = prefix || suffix ? `${prefix}${suffix}.` : '';
      for (const [name, propRaw] of Object.entries(properties)) {
        const prop = this.resolve(propRaw);
        const constraints = this.constraints(prop);
        rows.push(
          `<tr><td><code>${escapeHtml(base + name)}</code></td><td>${this.typeLabel(propRaw)}</td>` +
            `<td>${required.has(name) ? 'yes' : ''}</td><td>${prose(prop.description)}` +
            (constraints.length ? ` <span class="c">${escapeHtml(constraints.join('; '))}</span>` : '') +
            '</td></tr>',
        );
        if (depth < MAX_FIELD_DEPTH && this.nested(prop).length > 0) {
          rows.push(...this.fieldRows(propRaw, `${base}${name}`, depth + 1));
        }
      }
    }
    return rows;
  }

  private fieldTable(raw: unknown): string {
    const rows = this.fieldRows(raw);
    if (rows.length === 0) return '';
    const closed = this.resolve(raw).additionalProperties === false;
    return (
      '<table><thead><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr></thead>' +
      `<tbody>${rows.join('')}</tbody></table>` +
      (closed ? '<p class="c">No other field is accepted.</p>' : '')
    );
  }

  /** Who may call an operation: its own security requirements, else the document's. */
  private security(op: Json): string {
    const requirements = Array.isArray(op.security)
      ? op.security
      : Array.isArray(this.doc.security)
        ? this.doc.security
        : null;
    if (requirements === null) return '';
    const alternatives = requirements.filter(isObject).map((requirement) => {
      const schemes = Object.entries(requirement).map(([name, roles]) => {
        const label = `<a href="#${escapeHtml(anchor('security', name))}">${escapeHtml(name)}</a>`;
        const scopes = Array.isArray(roles) ? roles.map((r) => `<code>${escapeHtml(String(r))}</code>`) : [];
        return scopes.length > 0 ? `${label} with ${scopes.join(' and ')}` : label;
      });
      return schemes.length > 0 ? schemes.join(' and ') : 'none';
    });
    return `<p class="auth"><strong>Authentication:</strong> ${alternatives.length > 0 ? alternatives.join(' or ') : 'none'}.</p>`;
  }

  /** The document's security schemes, each with its own anchor. */
  private securitySchemes(): string {
    const components = isObject(this.doc.components) ? this.doc.components : {};
    const schemes = isObject(components.securitySchemes) ? components.securitySchemes : {};
    const sections = Object.entries(schemes).map(([name, raw]) => {
      const scheme = this.resolve(raw);
      const kind = [scheme.type, scheme.scheme, scheme.in, scheme.name]
        .filter((part) => typeof part === 'string')
        .map((part) => `<code>${escapeHtml(String(part))}</code>`)
        .join(' ');
      const format =
        typeof scheme.bearerFormat === 'string' ? `, format <code>${escapeHtml(scheme.bearerFormat)}</code>` : '';
      return (
        `<section class="schema" id="${escapeHtml(anchor('security', name))}"><h3>${escapeHtml(name)}</h3>` +
        `<p>${kind}${format}</p>${scheme.description ? `<p>${prose(scheme.description)}</p>` : ''}</section>`
      );
    });
    return sections.length ? `<h2 id="authentication">Authentication</h2>${sections.join('')}` : '';
  }

  /** A body's media types and fields; `fields: false` names the schema only (it has its own section). */
  private content(content: unknown, fields: boolean): string {
    if (!isObject(content)) return '';
    return Object.entries(content)
      .map(([type, media]) => {
        const schemaRaw = isObject(media) ? media.schema : undefined;
        const line = `<p><code>${escapeHtml(type)}</code>: ${this.typeLabel(schemaRaw)}</p>`;
        const table = fields ? this.fieldTable(schemaRaw) : '';
        if (!table) return line;
        return `${line}<details open><summary>Fields</summary>${table}</details>`;
      })
      .join('');
  }

  private parameters(raw: unknown): string {
    if (!Array.isArray(raw) || raw.length === 0) return '';
    const rows = raw.map((p) => {
      const param = this.resolve(p);
      return (
        `<tr><td><code>${escapeHtml(String(param.name ?? ''))}</code></td><td>${escapeHtml(String(param.in ?? ''))}</td>` +
        `<td>${this.typeLabel(param.schema)}</td><td>${param.required === true ? 'yes' : ''}</td>` +
        `<td>${prose(param.description)}</td></tr>`
      );
    });
    return (
      '<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th>' +
      `<th>Description</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
    );
  }

  private headers(raw: unknown): string {
    if (!isObject(raw) || Object.keys(raw).length === 0) return '';
    const rows = Object.entries(raw).map(([name, h]) => {
      const headerObject = this.resolve(h);
      return (
        `<tr><td><code>${escapeHtml(name)}</code></td><td>${this.typeLabel(headerObject.schema)}</td>` +
        `<td>${prose(headerObject.description)}</td></tr>`
      );
    });
    return (
      '<details><summary>Headers</summary><table><thead><tr><th>Header</th><th>Type</th><th>Description</th></tr>' +
      `</thead><tbody>${rows.join('')}</tbody></table></details>`
    );
  }

  private responses(raw: unknown): string {
    if (!isObject(raw)) return '';
    const items = Object.entries(raw).map(([status, r]) => {
      const response = this.resolve(r);
      const success = status.startsWith('2');
      return (
        `<div class="response"><p><span class="status ${success ? 'ok' : 'err'}">${escapeHtml(status)}</span> ` +
        `${prose(response.description)}</p>${this.content(response.content, success)}${this.headers(response.headers)}</div>`
      );
    });
    return `<h4>Responses</h4>${items.join('')}`;
  }

  private operation(path: string, method: string, op: Json): string {
    const body = isObject(op.requestBody) ? this.resolve(op.requestBody) : null;
    const requestBody = body
      ? `<h4>Request body${body.required === true ? ' (required)' : ''}</h4>${prose(body.description)}` +
        this.content(body.content, true)
      : '';
    return (
      `<section class="op" id="${escapeHtml(anchor(method, path))}">` +
      `<h3><span class="method ${escapeHtml(method)}">${escapeHtml(method.toUpperCase())}</span> ` +
      `<code>${escapeHtml(path)}</code> <span class="summary">${prose(op.summary)}</span></h3>` +
      (op.description ? `<p>${prose(op.description)}</p>` : '') +
      this.security(op) +
      this.parameters(op.parameters) +
      requestBody +
      this.responses(op.responses) +
      '</section>'
    );
  }

  /** Every operation, grouped by its first tag in the order of the document's tags. */
  private operations(): { tag: string; description: unknown; ops: { path: string; method: string; op: Json }[] }[] {
    const tags = Array.isArray(this.doc.tags) ? this.doc.tags.filter(isObject) : [];
    const groups = new Map<
      string,
      { tag: string; description: unknown; ops: { path: string; method: string; op: Json }[] }
    >();
    for (const t of tags) groups.set(String(t.name), { tag: String(t.name), description: t.description, ops: [] });
    const paths = isObject(this.doc.paths) ? this.doc.paths : {};
    for (const [path, item] of Object.entries(paths)) {
      if (!isObject(item)) continue;
      for (const method of METHODS) {
        const op = item[method];
        if (!isObject(op)) continue;
        const tag = Array.isArray(op.tags) && op.tags.length > 0 ? String(op.tags[0]) : 'Other';
        if (!groups.has(tag)) groups.set(tag, { tag, description: undefined, ops: [] });
        groups.get(tag)!.ops.push({ path, method, op });
      }
    }
    return [...groups.values()].filter((g) => g.ops.length > 0);
  }

  private schemas(): string {
    const components = isObject(this.doc.components) ? this.doc.components : {};
    const schemas = isObject(components.schemas) ? components.schemas : {};
    const sections = Object.entries(schemas).map(([name, s]) => {
      const schema = this.resolve(s);
      const table = this.fieldTable(s);
      return (
        `<section class="schema" id="${escapeHtml(anchor('schema', name))}"><h3>${escapeHtml(name)}</h3>` +
        (schema.description ? `<p>${prose(schema.description)}</p>` : '') +
        (table || `<p>${this.typeLabel(s)}</p>`) +
        '</section>'
      );
    });
    return sections.length ? `<h2 id="schemas">Schemas</h2>${sections.join('')}` : '';
  }

  render(): string {
    const info = isObject(this.doc.info) ? this.doc.info : {};
    const title = escapeHtml(String(info.title ?? 'API'));
    const version = escapeHtml(String(info.version ?? ''));
    const groups = this.operations();
    const nav = groups
      .map(
        (g) =>
          `<li>${escapeHtml(g.tag)}<ul>${g.ops
            .map(
              ({ path, method, op }) =>
                `<li><a href="#${escapeHtml(anchor(method, path))}"><span class="method ${escapeHtml(method)}">` +
                `${escapeHtml(method.toUpperCase())}</span> <code>${escapeHtml(path)}</code></a> ${prose(op.summary)}</li>`,
            )
            .join('')}</ul></li>`,
      )
      .join('');
    const main = groups
      .map(
        (g) =>
          `<h2 id="${escapeHtml(anchor('tag', g.tag))}">${escapeHtml(g.tag)}</h2>` +
          (g.description ? `<p>${prose(g.description)}</p>` : '') +
          g.ops.map(({ path, method, op }) => this.operation(path, method, op)).join(''),
      )
      .join('');
    return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} ${version} API</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #1f2328; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f3f4f6; padding: 0 .25em; border-radius: 3px; }
h1 small { font-weight: normal; color: #59636e; font-size: .6em; }
h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .2em; margin-top: 2em; }
h3 { font-size: 1.1em; }
h4 { margin: 1em 0 .3em; }
nav ul { list-style: none; padding-left: 1em; }
nav a { text-decoration: none; }
.op, .schema { border: 1px solid #d1d9e0; border-radius: 6px; padding: 0 1em .8em; margin: 1em 0; }
.method { display: inline-block; min-width: 4em; text-align: center; color: #fff; border-radius: 3px; font-size: .8em; font-weight: bold; padding: .1em .4em; }
.get { background: #1a7f37; } .post { background: #0969da; } .put, .patch { background: #9a6700; } .delete { background: #cf222e; }
.options, .head, .trace { background: #59636e; }
.summary { font-weight: normal; }
.status { display: inline-block; font-weight: bold; border-radius: 3px; padding: 0 .4em; }
.status.ok { background: #dafbe1; } .status.err { background: #ffebe9; }
.response { margin: .4em 0 .8em; }
.c { color: #59636e; font-size: .9em; }
table { border-collapse: collapse; width: 100%; margin: .3em 0; }
th, td { border: 1px solid #d1d9e0; padding: .25em .5em; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
details > summary { cursor: pointer; color: #0969da; }
</style>
</head>
<body>
<header>
<h1>${title} <small>${version}</small></h1>
${info.summary ? `<p><strong>${prose(info.summary)}</strong></p>` : ''}
${info.description ? `<p>${prose(info.description)}</p>` : ''}
<p>The OpenAPI document: <a href="/api-doc/openapi.json">/api-doc/openapi.json</a>.</p>
</header>
<nav><h2>Routes</h2><ul>${nav}</ul></nav>
<main>${this.securitySchemes()}${main}${this.schemas()}</main>
</body>
</html>
`;
  }
}

/** The documentation page of an OpenAPI document: self-contained HTML, every text escaped. */
export function renderDocsPage(document: Json): string {
  return new PageRenderer(document).render();
}

@Public()
@Controller()
export class DocsController {
  private readonly document: Json;
  private readonly page: string;

  constructor(@Inject(API_CONFIG) config: ApiConfig) {
    this.document = buildOpenApiDocument({ version: config.version, defaultModel: config.modelName });
    this.page = renderDocsPage(this.document);
  }

  @Get('docs')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('content-security-policy', CONTENT_SECURITY_POLICY)
  docs(): string {
    return this.page;
  }

  @Get('api-doc/openapi.json')
  openApi(): Json {
    return this.document;
  }
}
