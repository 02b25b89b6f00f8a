/**
 * The admin routes' request and response shapes, declared once: the controllers parse with these schemas and the
 * OpenAPI document is generated from them. Requests are strict (an unknown field is refused before any field is
 * read), field order is check order, and each message names its field. Nothing a client sends reaches SQL except
 * as a bound parameter; what needs the registry (a model's context, the TGI limits `default_parameters` is checked
 * against, the fallback graph) is checked by the controller after parsing.
 */
import { z } from 'zod';
import { ID_PATTERN } from '@switchyard/protocol';
import { parseQuantize, QUANTIZE_CHOICES } from '@switchyard/models';
import { SCOPES } from '../auth/api-key.entity';
import { boolean, keepAliveField } from '../common/schema';
import type { AdminErrorName } from '../docs/error-responses';

/** An admin route's errors: a key without the `admin` scope, a store down or a fault on every one, and its own. */
export const adminErrors = (...own: AdminErrorName[]): AdminErrorName[] => [
  'Unauthorized',
  'Forbidden',
  ...own,
  'Internal',
  'Unavailable',
];

/** A request object that refuses unknown keys first, with `what` naming them ("field", "query parameter"). */
function refusingUnknown<S extends z.ZodObject>(object: S, what: 'field' | 'query parameter', quote: boolean) {
  const known = new Set(Object.keys(object.shape));
  return z.preprocess((value, ctx) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      ctx.addIssue({ code: 'custom', message: 'the request body must be a JSON object' });
      return value;
    }
    const unknown = Object.keys(value).filter((k) => !known.has(k));
    if (unknown.length > 0) {
      const names = unknown.slice(0, 5).map((k) => (quote ? JSON.stringify(k.slice(0, 64)) : k));
      ctx.addIssue({ code: 'custom', message: `unknown ${what}(s): ${names.join(', ')}` });
    }
    return value;
  }, object);
}

/** A control character (C0, DEL, C1): none belongs in a name or a path, and Postgres cannot store a NUL. */
const CONTROL = /\p{Cc}/u;

/** A non-blank string of at most `max` characters with no control character. */
export function text(name: string, max: number) {
  const error = `\`${name}\` must be a non-empty string of at most ${max} characters`;
  return z
    .string({ error })
    .min(1, { error })
    .max(max, { error })
    .refine((v) => v.trim().length > 0, { error })
    .refine((v) => !CONTROL.test(v), { error: `\`${name}\` must not contain a control character` });
}

const MODEL_ID_DESCRIPTION = '1-128 letters, digits or `. _ -`, starting with a letter or digit.';

/** A model id, with the message the admin routes have always given. */
export function modelId(name = 'id') {
  return z
    .string({ error: `\`${name}\` must be 1-128 letters, digits or . _ - (starting with a letter or digit)` })
    .regex(ID_PATTERN, {
      error: `\`${name}\` must be 1-128 letters, digits or . _ - (starting with a letter or digit)`,
    });
}

/** A list of at most `max` model ids without repeats; each bad entry is named by its index. */
function idList(name: string, description: string, max = 100) {
  const error = `\`${name}\` must be a list of at most ${max} model ids`;
  const id = modelId();
  return z
    .array(z.unknown(), { error })
    .max(max, { error })
    .superRefine((list, ctx) => {
      const bad = list.findIndex((v) => !id.safeParse(v).success);
      if (bad >= 0) {
        ctx.addIssue({
          code: 'custom',
          path: [bad],
          message: `\`${name}[${bad}]\` must be 1-128 letters, digits or . _ - (starting with a letter or digit)`,
        });
      } else if (new Set(list).size !== list.length) {
        ctx.addIssue({ code: 'custom', message: `\`${name}\` lists a model twice` });
      }
    })
    .transform((list) => list as string[])
    .nullish()
    .meta({
      description,
      items: { type: 'string', pattern: ID_PATTERN.source, description: MODEL_ID_DESCRIPTION },
      uniqueItems: true,
    });
}

/** undefined when absent, null when null, else a positive integer up to `max` (named `bound` in the message). */
function positiveInt(name: string, max: number | undefined, bound = String(max)) {
  const error = `\`${name}\` must be a positive integer up to ${bound}, or null`;
  const int = z.int({ error }).min(1, { error });
  return (max === undefined ? int : int.max(max, { error })).nullish();
}

/**
 * An ISO 8601 date or timestamp (zod's checks: real calendar days, hours 00-23) with a year from 0001, as a Date.
 * JavaScript's own parser is laxer: it rolls 2024-02-30 over to March and takes years Postgres cannot store.
 */
export function isoDate(name: string) {
  const error = `\`${name}\` must be an ISO 8601 date from year 0001 to 9999, like 2026-01-31T00:00:00Z`;
  return z
    .union([z.iso.datetime({ offset: true, local: true }), z.iso.date()], { error })
    .refine((value) => !value.startsWith('0000'), { error })
    .transform((value) => new Date(value))
    .meta({ format: 'date-time' });
}

/** Bounds of a free-form JSON value an admin stores (`default_parameters`). */
export interface JsonBounds {
  /** Objects and arrays nested at most this deep (the value itself is depth 1). */
  maxDepth: number;
  /** Values (objects, arrays, strings, numbers, ...) in all. */
  maxValues: number;
  /** Characters of every string and key together. */
  maxChars: number;
}

/**
 * What is wrong with a parsed JSON value's shape, if anything, found before anything recurses into it
 * (JSON.stringify, TypeORM, Postgres) by an explicit stack: a body nested 100,000 deep parses, then overflows the
 * call stack of whatever walks it. NUL in strings and keys is refused too, which Postgres's jsonb cannot hold.
 */
function jsonProblem(value: unknown, bounds: JsonBounds): string | undefined {
  const stack: [unknown, number][] = [[value, 1]];
  let values = 0;
  let chars = 0;
  const text = (s: string) => {
    chars += s.length;
    if (chars > bounds.maxChars) return `holds more than ${bounds.maxChars} characters of text`;
    if (s.includes('\0')) return 'must not contain a NUL character';
    return undefined;
  };
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++values > bounds.maxValues) return `holds more than ${bounds.maxValues} values`;
    if (typeof v === 'string') {
      const why = text(v);
      if (why) return why;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > bounds.maxDepth) return `must not nest objects or lists more than ${bounds.maxDepth} deep`;
    if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
    else {
      for (const [key, item] of Object.entries(v)) {
        const why = text(key);
        if (why) return why;
        stack.push([item, depth + 1]);
      }
    }
  }
  return undefined;
}

/** A JSON object within `bounds`, checked without recursion (see `jsonProblem`). */
export function boundedObject(name: string, bounds: JsonBounds, typeError: string) {
  return z.record(z.string(), z.unknown(), { error: typeError }).superRefine((value, ctx) => {
    const why = jsonProblem(value, bounds);
    if (why) ctx.addIssue({ code: 'custom', message: `\`${name}\` ${why}` });
  });
}

const timestamp = (description: string) => z.iso.datetime().meta({ description });

// ---- keys ----

const SCOPES_DESCRIPTION =
  '`inference`: the generation, tokenize and models routes; `admin`: the /admin routes, and every other route too.';
const SCOPES_ERROR = '`scopes` must be a non-empty list of "inference" and "admin"';
const LIMIT_MAX = 1_000_000_000;
const limitDescription = (what: string) =>
  `The most ${what} per minute, counted across every API replica; null for no limit.`;
const RPM = limitDescription('requests');
const TPM = limitDescription('tokens (prompt + `max_new_tokens`, reserved when a request starts)');

export const CreateApiKeyRequest = refusingUnknown(
  z
    .strictObject({
      name: text('name', 200).meta({ description: 'A name to tell the key by (not blank).' }),
      scopes: z
        .array(z.enum(SCOPES, { error: SCOPES_ERROR }), { error: SCOPES_ERROR })
        .min(1, { error: SCOPES_ERROR })
        .max(SCOPES.length, { error: SCOPES_ERROR })
        .transform((scopes) => [...new Set(scopes)])
        .default(['inference'])
        .meta({ description: `${SCOPES_DESCRIPTION} Repeats count once.` }),
      expires_at: isoDate('expires_at')
        .nullish()
        .transform((d) => d ?? null)
        .meta({
          description:
            'When the key stops working, as ISO 8601 (`2026-01-31T00:00:00Z`); absent or null for never. Years ' +
            '0001 to 9999, real calendar dates only.',
        }),
      allowed_models: idList(
        'allowed_models',
        'The model ids the key may use, fallbacks included; absent or null means all. They need not be ' +
          'registered yet.',
      ),
      rpm_limit: positiveInt('rpm_limit', LIMIT_MAX).meta({ description: RPM }),
      tpm_limit: positiveInt('tpm_limit', LIMIT_MAX).meta({ description: TPM }),
    })
    .meta({
      id: 'CreateApiKeyRequest',
      examples: [{ name: 'ci', scopes: ['inference'], allowed_models: ['small'], rpm_limit: 60 }],
    }),
  'field',
  true,
);
export type CreateApiKeyRequest = z.output<typeof CreateApiKeyRequest>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const ApiKeyParams = z.object({
  id: z
    .string({ error: '`id` must be a UUID' })
    .regex(UUID, { error: '`id` must be a UUID' })
    .transform((id) => id.toLowerCase())
    .meta({ description: 'The key id.', format: 'uuid' }),
});

const apiKeyFields = {
  id: z.uuid().meta({ description: 'The key id, as `DELETE /admin/keys/{id}` takes it.' }),
  name: z.string().meta({ description: 'A name to tell the key by.' }),
  prefix: z.string().meta({ description: 'The first 9 characters of the key (`sy-` and 6 more), to tell keys apart.' }),
  scopes: z
    .array(z.enum(SCOPES))
    .min(1)
    .max(SCOPES.length)
    .meta({ description: SCOPES_DESCRIPTION, uniqueItems: true }),
  allowed_models: z
    .array(z.string())
    .nullable()
    .meta({ description: 'The model ids the key may use, fallbacks included; null means all.' }),
  rpm_limit: z.int().min(1).max(LIMIT_MAX).nullable().meta({ description: RPM }),
  tpm_limit: z.int().min(1).max(LIMIT_MAX).nullable().meta({ description: TPM }),
  expires_at: timestamp('When the key stops working; null for never.').nullable(),
  revoked_at: timestamp('When it was revoked; null while it is active.').nullable(),
  last_used_at: timestamp('When it was last used, to within a minute; null if never.').nullable(),
  created_at: timestamp('When it was made.'),
};

export const ApiKey = z
  .object(apiKeyFields)
  .meta({ id: 'ApiKey', description: 'A key as listed: never its plaintext, nor its hash.' });
export type ApiKey = z.output<typeof ApiKey>;

export const CreatedApiKey = z
  .object({
    key: z
      .string()
      .regex(/^sy-[A-Za-z0-9_-]{43}$/)
      .meta({
        description: 'The key, to send as `Authorization: Bearer <key>`. It cannot be shown again.',
      }),
    ...apiKeyFields,
  })
  .meta({
    id: 'CreatedApiKey',
    description: 'A new key: its plaintext, shown this once (only its hash is stored), and its fields.',
  });
export type CreatedApiKey = z.output<typeof CreatedApiKey>;

// ---- models ----

/** TGI's parameters are flat but for `stop`: this leaves room and no more. */
export const DEFAULT_PARAMETERS_BOUNDS: JsonBounds = { maxDepth: 4, maxValues: 1000, maxChars: 10_000 };

const MAX_INPUT_DESCRIPTION =
  "The most prompt tokens a request may have; less than `max_total_tokens`, at most the model's context. Null: the " +
  "launcher's `--max-input-tokens` for its default model, `max_total_tokens` - 1 for the others.";
const MAX_TOTAL_DESCRIPTION =
  "The most prompt plus generated tokens, at most the model's context. Null: the launcher's `--max-total-tokens` " +
  "for its default model, the model's context for the others.";

/** A token limit; its bound, the model's context, is known once its directory is read (`tokenLimitError`). */
const tokenLimit = (name: string, description: string) =>
  positiveInt(name, undefined, "the model's context").meta({ description });

/** The message of a token limit over the model's context, as the controller checks it. */
export const tokenLimitError = (name: string, positions: number) =>
  `\`${name}\` must be a positive integer up to ${positions}, or null`;

const QUANTIZE_ERROR = '`quantize` must be none, q8, q4 or null';

function modelFields(update: boolean) {
  return {
    path: text('path', 4096).meta({
      description:
        'The directory of an Optimum-style ONNX decoder export, as the API and the workers see it (a relative ' +
        "path is taken from the API's working directory). The API reads it (config, tokenizer, chat template and " +
        "the graph's decoder signature; no ONNX session) before " +
        (update ? 'saving a new one.' : 'saving it.'),
    }),
    quantize: z
      .string({ error: QUANTIZE_ERROR })
      .transform((raw, ctx) => {
        try {
          return parseQuantize(raw);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `\`quantize\`: ${(err as Error).message}` });
          return z.NEVER;
        }
      })
      .nullish()
      .meta({
        enum: [...QUANTIZE_CHOICES, null],
        description:
          'Weight-only quantization of its MatMuls when a worker loads it: int8 (q8) or int4 (q4). Null leaves it ' +
          "to the workers' `--quantize`. A directory that holds a graph quantized ahead of time is served as it is.",
      }),
    enabled: boolean('enabled')
      .optional()
      .meta({
        description: 'Whether requests may use it; a disabled model falls back, or answers 503.',
        ...(update ? {} : { default: true }),
      }),
    pinned: boolean('pinned')
      .optional()
      .meta({
        description:
          'Whether workers keep it once loaded: a pinned model is never evicted, when idle past `--keep-alive` ' +
          'or to make room for another.',
        ...(update ? {} : { default: false }),
      }),
    keep_alive: keepAliveField(
      "How long it stays resident once idle, before workers park it; null: the workers' `--keep-alive`.",
    ),
    max_input_tokens: tokenLimit('max_input_tokens', MAX_INPUT_DESCRIPTION),
    max_total_tokens: tokenLimit('max_total_tokens', MAX_TOTAL_DESCRIPTION),
    default_parameters: boundedObject(
      'default_parameters',
      DEFAULT_PARAMETERS_BOUNDS,
      '`default_parameters` must be an object of TGI parameters',
    )
      .optional()
      .meta({
        description:
          "TGI `parameters` that apply under a request's own, checked as TGI checks a request's, within the " +
          "model's limits (nested at most 4 deep, at most 1,000 values and 10,000 characters of text).",
        allOf: [{ $ref: '#/components/schemas/GenerateParameters' }],
      }),
    fallbacks: idList(
      'fallbacks',
      'Registered model ids to try, in order, when this one cannot serve a request; not the model itself, and ' +
        "no loop through the others' lists." +
        (update ? ' Null empties the list.' : ''),
    ),
  };
}

const created = modelFields(false);
const updated = modelFields(true);

export const CreateModelRequest = refusingUnknown(
  z
    .strictObject({
      id: modelId().meta({ description: `The model id. ${MODEL_ID_DESCRIPTION}` }),
      path: created.path,
      quantize: created.quantize,
      enabled: created.enabled,
      pinned: created.pinned,
      keep_alive: created.keep_alive,
      max_input_tokens: created.max_input_tokens,
      max_total_tokens: created.max_total_tokens,
      default_parameters: created.default_parameters,
      fallbacks: created.fallbacks,
    })
    .meta({
      id: 'CreateModelRequest',
      examples: [{ id: 'small', path: '/models/small', fallbacks: ['tiny'], max_total_tokens: 2048 }],
    }),
  'field',
  true,
);
export type CreateModelRequest = z.output<typeof CreateModelRequest>;

export const UpdateModelRequest = refusingUnknown(
  z
    .strictObject({
      quantize: updated.quantize,
      keep_alive: updated.keep_alive,
      path: updated.path.optional(),
      enabled: updated.enabled,
      pinned: updated.pinned,
      max_input_tokens: updated.max_input_tokens,
      max_total_tokens: updated.max_total_tokens,
      default_parameters: updated.default_parameters,
      fallbacks: updated.fallbacks,
    })
    .meta({
      id: 'UpdateModelRequest',
      description: 'The fields to change; absent ones keep their value. A new `path` is loaded and checked first.',
      examples: [{ enabled: false }, { fallbacks: ['tiny'], default_parameters: { temperature: 0.7 } }],
    }),
  'field',
  true,
);
export type UpdateModelRequest = z.output<typeof UpdateModelRequest>;

export const ModelParams = z.object({
  id: modelId().meta({ description: 'The model id.', examples: ['small'] }),
});

export const Model = z
  .object({
    id: z.string().meta({ description: 'The model id, as requests name it.' }),
    path: z.string().meta({ description: 'Its directory, absolute.' }),
    enabled: z.boolean(),
    pinned: z.boolean(),
    fallbacks: z.array(z.string()).meta({ description: 'Model ids to try, in order.' }),
    max_input_tokens: z.int().min(1).nullable().meta({ description: MAX_INPUT_DESCRIPTION }),
    max_total_tokens: z.int().min(1).nullable().meta({ description: MAX_TOTAL_DESCRIPTION }),
    default_parameters: z
      .record(z.string(), z.unknown())
      .meta({ description: "TGI `parameters` under a request's own." }),
    quantize: z
      .string()
      .nullable()
      .meta({
        enum: [...QUANTIZE_CHOICES, null],
        description: "Its quantization at load; null: the workers' `--quantize`.",
      }),
    keep_alive: z.number().nullable().meta({
      description: "Its keep-alive in seconds (-1: held resident, 0: unloaded once idle); null: the workers'.",
    }),
    memory_bytes: z
      .int()
      .nullable()
      .meta({
        description:
          'What a worker budgets for it with the default batch budgets: its weights as resident (quantized when ' +
          '`quantize` says so), its KV cache of 8,192 tokens and the working memory of its largest prefill; ' +
          'estimated when its directory was checked.',
      }),
    created_at: timestamp('When it was registered.'),
    updated_at: timestamp('When it last changed.'),
  })
  .meta({ id: 'Model', description: 'A model of the registry.' });
export type Model = z.output<typeof Model>;

export const ModelCommand = z
  .object({
    id: z.string().meta({ description: 'The model id.' }),
    status: z.enum(['load requested', 'unload requested']),
  })
  .meta({
    id: 'ModelCommand',
    description: 'A load or unload command, sent to the workers; it takes effect when a worker acts on it.',
  });
export type ModelCommand = z.output<typeof ModelCommand>;

// ---- workers ----

export const Worker = z
  .object({
    id: z.string().meta({ description: 'The worker id.' }),
    host: z.string().meta({ description: 'The host it runs on.' }),
    pid: z.int().meta({ description: 'Its process id.' }),
    started_at: timestamp('When it started.'),
    heartbeat_at: timestamp('When it last reported.'),
    draining: z.boolean().meta({ description: 'Whether it is shutting down: it takes no new requests.' }),
    memory: z.object({
      used_bytes: z.int().meta({ description: 'What its resident models take.' }),
      budget_bytes: z.int().meta({ description: 'What they may use (`--device-memory`).' }),
      parked_bytes: z.int().meta({ description: 'What its parked models keep.' }),
      host_budget_bytes: z.int().meta({ description: 'What they may keep (`--host-memory`; 0: no parking).' }),
    }),
    event_loop_max_ms: z
      .number()
      .nullable()
      .meta({ description: 'The worst event-loop delay since it started, in milliseconds.' }),
    models: z.array(
      z.object({
        id: z.string().meta({ description: 'The model id.' }),
        state: z.enum(['loading', 'loaded', 'parked']).meta({
          description:
            'Parked models keep their session but take no requests: a request for one brings it back in milliseconds.',
        }),
        tier: z.enum(['resident', 'parked']),
        bytes: z.int().meta({ description: 'The memory it takes.' }),
        pinned: z.boolean(),
        active: z.int().meta({ description: 'Sequences generating now.' }),
        waiting: z.int().meta({ description: 'Requests waiting in the engine and in the queue.' }),
        oldest_queued_ms: z.number().meta({ description: 'How long the oldest queued request has waited.' }),
        dtype: z
          .string()
          .nullable()
          .meta({
            enum: ['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'q8f16', null],
            description: "Its weights' precision as served (null while loading).",
          }),
        quantize: z
          .string()
          .nullable()
          .meta({
            enum: [...QUANTIZE_CHOICES, null],
            description: 'The quantization applied when it loaded (null while loading).',
          }),
        attention: z.enum(['fused', 'exported']).nullable().meta({
          description: '`fused`: the attention rewrite is in force; `exported`: the graph runs as exported.',
        }),
        kv_dtype: z
          .string()
          .nullable()
          .meta({ enum: ['float32', 'float16', null], description: 'Its KV cache type.' }),
      }),
    ),
  })
  .meta({ id: 'Worker', description: 'A live worker, with its models and memory.' });
export type Worker = z.output<typeof Worker>;

// ---- usage ----

export const USAGE_GROUPS = ['model', 'key', 'day'] as const;

const usageQueryFields = z.object({
  to: isoDate('to')
    .optional()
    .meta({
      description: 'The end of the range, excluded, as ISO 8601; default now.',
      examples: ['2026-01-31T00:00:00Z'],
    }),
  from: isoDate('from')
    .optional()
    .meta({
      description: 'The start of the range, included, as ISO 8601; default a day before `to`.',
      examples: ['2026-01-01T00:00:00Z'],
    }),
  group_by: z
    .enum(USAGE_GROUPS, { error: '`group_by` must be model, key or day' })
    .default('model')
    .meta({ description: 'One row per served model, per key, or per UTC day.' }),
});

/** The usage query as documented: `from`, `to`, `group_by`. */
export const UsageQueryParameters = z.object({
  from: usageQueryFields.shape.from,
  to: usageQueryFields.shape.to,
  group_by: usageQueryFields.shape.group_by,
});

/** The usage query as read: `to` first (`from` defaults from it), the range in order. */
export const UsageQuery = refusingUnknown(usageQueryFields, 'query parameter', false)
  .transform(({ to = new Date(), from, group_by }) => ({
    to,
    from: from ?? new Date(to.getTime() - 24 * 3600_000),
    group_by,
  }))
  .refine(({ from, to }) => from <= to, { error: '`from` must not be after `to`' });
export type UsageQuery = z.output<typeof UsageQuery>;

export const UsageReport = z
  .object({
    from: timestamp('The start of the range, included.'),
    to: timestamp('The end of the range, excluded.'),
    group_by: z.enum(USAGE_GROUPS),
    rows: z
      .array(
        z.object({
          group: z.string().meta({
            description:
              'By `model`: the model that served the request, else the one it named. By `key`: the key id ' +
              '(empty for the `SWITCHYARD_ADMIN_KEY` key and with `--disable-auth`). By `day`: `YYYY-MM-DD`, in UTC.',
          }),
          requests: z.int().meta({ description: 'Generation requests, answered or failed.' }),
          prompt_tokens: z.int(),
          generated_tokens: z.int(),
          errors: z.int().meta({ description: 'Requests that ended in an error (status 400 or more).' }),
        }),
      )
      .meta({ description: 'One row per group, ordered by group.' }),
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.output<typeof UsageReport>;
