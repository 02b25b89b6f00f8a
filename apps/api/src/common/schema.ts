/**
 * Request bodies are parsed by their zod schema, the one source of their validation, their TypeScript type and
 * their OpenAPI document. A schema's own messages name the field (TGI's wording, "`top_k` must be strictly
 * positive"); zod's default messages are prefixed with the field's path.
 */
import { z } from 'zod';
import { ID_PATTERN, MAX_KEEP_ALIVE_MS, parseKeepAlive } from '@switchyard/protocol';
import { ApiError } from './api-error';

/** How many models a generation request may try: the one it names and its fallbacks. */
export const MAX_CANDIDATES = 8;

/** The message of a parse failure: the first issue, by the schema's order of fields. */
export function issueMessage(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'the request is invalid';
  if (issue.message.includes('`')) return issue.message;
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`));
  if (path.length === 0) return issue.message;
  // our own messages read on from the field's name ("`messages[0].role` must be ..."); zod's own get a colon
  return `\`${path.join('')}\`${issue.message.startsWith('must') ? ' ' : ': '}${issue.message}`;
}

/** The value parsed by `schema`, or a 422 (`validation`) in the route's error shape naming what is wrong. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw ApiError.validation(issueMessage(result.error));
}

/**
 * A request body (or TGI's `parameters`) as a strict object: a field the route does not declare is a 422 naming it,
 * never silently dropped. `typeError` is the message for a value that is not an object.
 */
export const strictBody = <S extends z.ZodRawShape>(shape: S, typeError: string) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `${issue.keys.map((k) => `\`${k}\``).join(', ')} ${issue.keys.length > 1 ? 'are not fields' : 'is not a field'} ` +
          'this route takes: nothing is ignored (see the request schema in /openapi.json)'
        : typeError,
  });

/** A field that takes null for "not set", as TGI's and OpenAI's clients send it. */
export const optional = <S extends z.ZodType>(schema: S) => schema.nullish();

/** A number field with TGI's type message. */
export const number = (name: string) => z.number({ error: `\`${name}\` must be a number` });

/** An integer field with TGI's type messages. */
export const integer = (name: string) =>
  z
    .number({ error: `\`${name}\` must be a number` })
    .int({ error: `\`${name}\` must be an integer` })
    .max(Number.MAX_SAFE_INTEGER, { error: `\`${name}\` must be an integer` });

export const boolean = (name: string) => z.boolean({ error: `\`${name}\` must be a boolean` });

/** A model or worker id as Redis keys and queue names take it. */
export const modelId = z.string().regex(ID_PATTERN, { error: 'must be a model id (letters, digits, `.`, `_`, `-`)' });

export function modelField(header = false) {
  return optional(z.string({ error: '`model` must be a string' })).meta({
    description:
      'The model to use: a registered, enabled model id. Absent, empty, `tgi` or a URL: the default model ' +
      `(\`model_id\` in \`GET /info\`).${header ? ' The `x-model` header can name it too.' : ''}`,
    examples: ['demo-small'],
  });
}

function fallbacksField(servedIn: string) {
  const message = `\`fallbacks\` must be a list of at most ${MAX_CANDIDATES} model ids`;
  return optional(
    z
      .array(z.string({ error: message }).regex(ID_PATTERN, { error: message }), { error: message })
      .max(MAX_CANDIDATES, { error: message }),
  ).meta({
    description:
      'Model ids to try, in order, when the model is disabled, cannot load, is overloaded (its oldest queued ' +
      'request has waited longer than `--fallback-queue-wait` on every worker that holds it) or fails before ' +
      "its first token. They replace the model's registered `fallbacks`; each one's own registered fallbacks " +
      `follow it. At most ${MAX_CANDIDATES} models are tried in all, each once; those the key may not use are ` +
      `skipped. The model that served the request is in ${servedIn}.`,
    examples: [['small', 'tiny']],
  });
}

/** Ollama's `keep_alive`, as a request or a registered model gives it; `parseKeepAlive` reads it. */
export function keepAliveField(description: string) {
  return z
    .union([z.string(), z.number()], {
      error: '`keep_alive` must be a duration like "5m", "30s" or "-1", or a number of seconds',
    })
    .nullish()
    .transform((raw, ctx) => {
      if (raw === null || raw === undefined) return raw;
      try {
        return parseKeepAlive(raw)!;
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .meta({
      description:
        `${description} A duration ("30s", "5m", "1h") or a number of seconds, at most ${MAX_KEEP_ALIVE_MS / 86_400_000} ` +
        'days; -1 keeps the model resident through memory pressure from other models, 0 unloads it as soon as it is ' +
        'idle.',
      examples: ['5m', 0, -1],
    });
}

const REQUEST_KEEP_ALIVE =
  "Ollama's `keep_alive`: how long the model stays resident once this request leaves it idle (the last request's " +
  'value wins).';

/**
 * The fields with which a generation request chooses what serves it: the model (`header`: the route takes the
 * `x-model` header too), its fallbacks (the one that served is named in `servedIn`) and its `keep_alive`.
 */
export function servingFields(servedIn: string, header = false) {
  return {
    model: modelField(header),
    fallbacks: fallbacksField(servedIn),
    keep_alive: keepAliveField(REQUEST_KEEP_ALIVE),
  };
}
