/**
 * The wire contract between the API and the workers, defined once: Redis names, the generate job's payload,
 * the control commands, the entries of a request's token stream and a worker's heartbeat. Both sides import
 * these; neither builds a key or parses an entry any other way.
 */
import { z } from 'zod';
import { parseJson, parseOrThrow } from './parse';
import { errorEventSchema, finalEventSchema, generationParametersSchema, tokenEventSchema } from '@switchyard/batching';

/** A model or worker id: safe inside Redis keys and BullMQ queue names (which refuse ':'). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidId(id: string): boolean {
  return ID_PATTERN.test(id);
}

/** The shared control queue's name, a constant so that `@Processor` and `@InjectQueue` can name it. */
export const CONTROL_QUEUE = 'control';

/**
 * Every Redis name, under one prefix (default `sy:`) so that deployments can share a Redis. BullMQ joins its
 * own prefix and a queue name with ':', so `generate:<model>` is the queue `<model>` under the BullMQ prefix
 * `sy:generate`.
 */
export class RedisNames {
  constructor(readonly prefix = 'sy:') {
    if (!/^[A-Za-z0-9_.-]*:$/.test(prefix)) throw new Error(`the Redis prefix must end with ':', got "${prefix}"`);
  }

  /** BullMQ's prefix for the per-model generate queues; the queue's name is the model id. */
  get generatePrefix(): string {
    return `${this.prefix}generate`;
  }

  /** BullMQ's prefix for the shared control queue, whose name is `control`. */
  get controlPrefix(): string {
    return this.prefix.slice(0, -1);
  }

  readonly controlQueue = CONTROL_QUEUE;

  /** BullMQ's prefix for the per-worker command queues, whose names are the worker ids. */
  get workerCommandPrefix(): string {
    return `${this.prefix}worker-commands`;
  }

  stream(requestId: string): string {
    return `${this.prefix}gen:${requestId}`;
  }

  /**
   * An API instance's inbox: a stream each of whose entries holds one worker write's events for the requests
   * that instance follows (`encodeInboxEntry`). The instance reads it with one blocking XREAD.
   */
  inbox(apiId: string): string {
    return `${this.prefix}inbox:${apiId}`;
  }

  cancel(requestId: string): string {
    return `${this.prefix}cancel:${requestId}`;
  }

  /** The pub/sub channel that carries cancelled request ids to every worker. */
  get cancelChannel(): string {
    return `${this.prefix}cancel`;
  }

  worker(workerId: string): string {
    return `${this.prefix}worker:${workerId}`;
  }

  /** The ids of the workers that have written a heartbeat lately, scored with its expiry (`worker-registry.ts`). */
  get workers(): string {
    return `${this.prefix}workers`;
  }

  /** A worker's metrics snapshot (JSON), expiring with its heartbeat. */
  metrics(workerId: string): string {
    return `${this.prefix}metrics:${workerId}`;
  }

  /** A capped list of pool events (loads, evictions) from every worker, newest first. */
  get events(): string {
    return `${this.prefix}events`;
  }

  /** Why the last load of a model failed, kept briefly so the API can route around it. */
  loadError(model: string): string {
    return `${this.prefix}load-error:${model}`;
  }
}

/** What a worker needs to load a model: the API resolves it from the registry, so workers never read Postgres. */
export const modelSpecSchema = z.object({
  id: z.string().regex(ID_PATTERN),
  /** An absolute directory holding an Optimum-style ONNX decoder export. */
  path: z.string(),
  pinned: z.boolean(),
  /** Limits on prompt tokens and prompt + generated tokens; null takes the model's own. */
  maxInputTokens: z.int().nullable(),
  maxTotalTokens: z.int().nullable(),
  /** Quantization at load: `none`, `q8` or `q4`; null leaves it to the worker's --quantize. */
  quantization: z.string().nullable(),
  /** The model's own keep-alive in milliseconds (-1: held resident, 0: unloaded once idle); null: the worker's. */
  keepAliveMs: z.number().nullable().optional(),
});
export type ModelSpec = z.output<typeof modelSpecSchema>;

/** The longest keep-alive a request or a model may ask for (beyond it, -1 says "keep"). */
export const MAX_KEEP_ALIVE_MS = 7 * 24 * 3_600_000;

/**
 * A duration to milliseconds: "500ms", "30s", "5m", "1h", or a bare number of seconds (a sign and a fraction
 * allowed); null for anything else. The one duration syntax of flags and of `keep_alive`.
 */
export function parseDuration(raw: string): number | null {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(raw);
  if (!m) return null;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * scale);
}

/**
 * Ollama's `keep_alive`: a duration string ("30s", "5m", "1h", "500ms"), or a number of seconds; a negative value
 * keeps the model resident (-1), 0 unloads it once idle. Returns milliseconds, -1, or undefined when absent; throws
 * with a message for anything else.
 */
export function parseKeepAlive(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const expected = '`keep_alive` must be a duration like "5m", "30s" or "-1", or a number of seconds';
  let ms: number | null;
  if (typeof raw === 'number' && Number.isFinite(raw)) ms = raw * 1000;
  else if (typeof raw === 'string') {
    ms = parseDuration(raw);
    if (ms === null) throw new Error(`${expected}; got ${JSON.stringify(raw)}`);
  } else throw new Error(expected);
  if (ms < 0) return -1;
  if (ms > MAX_KEEP_ALIVE_MS) throw new Error('`keep_alive` may be at most 7 days; use -1 to keep a model resident');
  return Math.round(ms);
}

/**
 * W3C trace context (`traceparent`, `tracestate`) of the span that sent a job or a command, for the receiver's spans
 * to join the sender's trace; absent while the sender does not trace. The receiver's propagator reads it
 * (libs/telemetry); this checks its shape only: `tracestate` holds at most 32 members of 256 + 1 + 256 characters.
 */
export const traceContextSchema = z.object({
  traceparent: z
    .string()
    .regex(/^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/)
    .optional(),
  tracestate: z
    .string()
    .max(32 * 514)
    .optional(),
});

/** The payload of a job on `generate:<model>`; the job's id is the request id. */
export const generateJobSchema = z.object({
  requestId: z.string(),
  model: z.string(),
  inputIds: z.array(z.int()),
  /** The prompt's text, for `return_full_text`. */
  inputText: z.string().optional(),
  parameters: generationParametersSchema,
  /** Epoch milliseconds when the API queued it, for the queue time. */
  queuedAt: z.number(),
  /**
   * The API instance that follows the request: its events go to that instance's inbox (`RedisNames.inbox`). A job
   * without it (a client of the worker alone) has its events in `gen:<request id>`.
   */
  notify: z.string().regex(ID_PATTERN).optional(),
  /** The request's `keep_alive` (milliseconds, -1 or 0): how long the model stays resident once idle. */
  keepAliveMs: z.number().optional(),
  ...traceContextSchema.shape,
});
export type GenerateJob = z.output<typeof generateJobSchema>;

export const controlCommandSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('load'),
    spec: modelSpecSchema,
    /** Workers that must not take it: those already holding the model, when a replica is wanted. */
    exclude: z.array(z.string()).optional(),
    reason: z.enum(['request', 'replica', 'requeue', 'preload']),
    ...traceContextSchema.shape,
  }),
  z.object({ type: z.literal('unload'), model: z.string() }),
]);
export type ControlCommand = z.output<typeof controlCommandSchema>;

const attempt = { attempt: z.int() };
const startEventSchema = z.object({ type: z.literal('start'), worker: z.string(), at: z.number(), ...attempt });
const streamTokenSchema = tokenEventSchema.extend(attempt);
const streamFinalSchema = finalEventSchema.extend({
  ...attempt,
  /** The request's last token, written in the same entry so that a reader can mark it as the last. */
  lastToken: tokenEventSchema.optional(),
});
const streamErrorSchema = errorEventSchema.extend(attempt);

/** One entry of `gen:<request id>`: the worker's attempt number and the event. */
export const streamEventSchema = z.discriminatedUnion('type', [
  startEventSchema,
  streamTokenSchema,
  streamFinalSchema,
  streamErrorSchema,
]);
export type StreamEvent = z.output<typeof streamEventSchema>;

/** A generate job's payload as the worker takes it; throws a `ProtocolError` naming the bad fields. */
export function parseGenerateJob(value: unknown): GenerateJob {
  return parseOrThrow(generateJobSchema, 'generate job', value);
}

/** A control or worker command as the worker takes it; throws a `ProtocolError` naming the bad fields. */
export function parseControlCommand(value: unknown): ControlCommand {
  return parseOrThrow(controlCommandSchema, 'control command', value);
}

/** BullMQ options for a generate job: it runs once (a crash re-runs it through the stalled check, not a retry). */
export const GENERATE_JOB_OPTIONS = { attempts: 1, removeOnComplete: true, removeOnFail: 1000 } as const;

/** BullMQ options of a control or worker command. */
export const COMMAND_JOB_OPTIONS = { removeOnComplete: true, removeOnFail: 100 } as const;

/** Stream entries are `XADD key * e <json>`; this is the field's name. */
export const STREAM_FIELD = 'e';

/** Bounds on a token stream: entries kept and seconds it lives after its last write. */
export const STREAM_MAX_LEN = 10_000;
export const STREAM_TTL_S = 300;

export function encodeStreamEvent(event: StreamEvent): string {
  return JSON.stringify(event);
}

/** One inbox entry: the events of one write, each with its request id, in the order they were pushed. */
export function encodeInboxEntry(events: [string, StreamEvent][]): string {
  return JSON.stringify(events);
}

/** The JSON in an entry's field list (`['e', json]`), or null. */
function entryJson(fields: string[]): unknown {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== STREAM_FIELD) continue;
    try {
      return JSON.parse(fields[i + 1]) as unknown;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * A stream event as read from Redis, or null for a value that is not one. Token events too are parsed in full,
 * though one comes per generated token: zod 4's compiled parse of one takes 0.2-0.7 µs here (100k parses), less
 * than the JSON.parse before it.
 */
function toStreamEvent(value: unknown): StreamEvent | null {
  const parsed = streamEventSchema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** Parses one inbox entry's field list, leaving out events that are not ours; null for an entry that is not ours. */
export function decodeInboxEntry(fields: string[]): [string, StreamEvent][] | null {
  const value = entryJson(fields);
  if (!Array.isArray(value)) return null;
  const out: [string, StreamEvent][] = [];
  for (const item of value as unknown[]) {
    if (!Array.isArray(item) || typeof item[0] !== 'string') continue;
    const event = toStreamEvent(item[1]);
    if (event) out.push([item[0], event]);
  }
  return out;
}

/** Parses one stream entry's field list; null for an entry that is not ours. */
export function decodeStreamEntry(fields: string[]): StreamEvent | null {
  return toStreamEvent(entryJson(fields));
}

/** One entry of the `events` list. */
export const poolEventSchema = z.object({
  at: z.number(),
  worker: z.string(),
  type: z.enum(['load_started', 'loaded', 'load_failed', 'evicted', 'parked']),
  model: z.string(),
  reason: z.string().optional(),
  ms: z.number().optional(),
  error: z.string().optional(),
  /** Of a load: from disk (a session built) or from the parked tier. */
  tier: z.enum(['disk', 'parked']).optional(),
});
export type PoolEvent = z.output<typeof poolEventSchema>;

export const EVENTS_MAX_LEN = 1000;

/** `load-error:<model>`: why a worker's last load of the model failed, kept briefly (`RedisNames.loadError`). */
export const loadErrorSchema = z.object({
  worker: z.string(),
  error: z.string(),
  kind: z.enum(['cannot place', 'load failed']),
  /** Epoch milliseconds of the failure: a reader ignores one older than its own request. */
  at: z.number(),
});
export type LoadError = z.output<typeof loadErrorSchema>;

/** A load error as read from Redis, or null for a value that is not one. */
export function parseLoadError(raw: string): LoadError | null {
  return parseJson(loadErrorSchema, raw);
}

export const heartbeatModelSchema = z.object({
  id: z.string(),
  /** Parked models keep their session here but take no requests: a load command brings them back fast. */
  state: z.enum(['loading', 'loaded', 'parked']),
  bytes: z.number(),
  pinned: z.boolean(),
  /** Rows running and requests waiting in the engine. */
  running: z.number(),
  waiting: z.number(),
  /** Jobs waiting in the model's queue, and the age of the oldest in milliseconds. */
  queued: z.number(),
  oldestQueuedMs: z.number(),
  /** Once loaded: the weights' precision (fp32, fp16, q8, q4, ...), the quantization applied at load, the attention path. */
  dtype: z.string().optional(),
  quantize: z.string().optional(),
  attention: z.enum(['fused', 'exported']).optional(),
  kvDtype: z.string().optional(),
});
export type HeartbeatModel = z.output<typeof heartbeatModelSchema>;

/** `worker:<id>`: JSON with a TTL, rewritten every interval; a worker whose key expired is dead. */
export const heartbeatSchema = z.object({
  id: z.string(),
  /**
   * This process's run of the worker id (a restarted worker keeps its id): the jobs it takes are named
   * `<id>/<incarnation>` in BullMQ, so that crash recovery tells its jobs from a dead predecessor's.
   */
  incarnation: z.string().optional(),
  pid: z.number(),
  host: z.string(),
  startedAt: z.number(),
  at: z.number(),
  /** Device bytes used and budgeted; host bytes held by parked models, and the parked tier's budget. */
  memory: z.object({
    used: z.number(),
    budget: z.number(),
    parked: z.number().optional(),
    hostBudget: z.number().optional(),
  }),
  draining: z.boolean(),
  /** The worst event-loop delay in the last interval and since start, in milliseconds. */
  eventLoop: z.object({ maxMs: z.number(), worstMs: z.number() }),
  models: z.array(heartbeatModelSchema),
});
export type Heartbeat = z.output<typeof heartbeatSchema>;
