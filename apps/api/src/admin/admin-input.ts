/**
 * Strict reading of admin request bodies: known fields only, each with its type and bounds, and a 422 that
 * names the field otherwise. Nothing a client sends reaches SQL except as a bound parameter.
 */
import { isValidId } from '@switchyard/protocol';
import { ApiError } from '../common/api-error';

export type Body = Record<string, unknown>;

export function object(raw: unknown, fields: readonly string[]): Body {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw ApiError.validation('the request body must be a JSON object');
  }
  const unknown = Object.keys(raw).filter((k) => !fields.includes(k));
  if (unknown.length > 0) {
    throw ApiError.validation(
      `unknown field(s): ${unknown
        .slice(0, 5)
        .map((k) => JSON.stringify(k.slice(0, 64)))
        .join(', ')}`,
    );
  }
  return raw as Body;
}

/** A control character (C0, DEL, C1): none belongs in a name or a path, and Postgres cannot store a NUL. */
const CONTROL = /\p{Cc}/u;

export function string(body: Body, name: string, max: number): string {
  const v = body[name];
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > max) {
    throw ApiError.validation(`\`${name}\` must be a non-empty string of at most ${max} characters`);
  }
  if (CONTROL.test(v)) throw ApiError.validation(`\`${name}\` must not contain a control character`);
  return v;
}

export function optionalBool(body: Body, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw ApiError.validation(`\`${name}\` must be a boolean`);
  return v;
}

/** undefined when absent, null when null, else a positive integer up to `max`. */
export function optionalPositiveInt(body: Body, name: string, max = 1_000_000_000): number | null | undefined {
  const v = body[name];
  if (v === undefined || v === null) return v as undefined | null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0 || v > max) {
    throw ApiError.validation(`\`${name}\` must be a positive integer up to ${max}, or null`);
  }
  return v;
}

export function modelId(value: unknown, name = 'id'): string {
  if (typeof value !== 'string' || !isValidId(value)) {
    throw ApiError.validation(`\`${name}\` must be 1-128 letters, digits or . _ - (starting with a letter or digit)`);
  }
  return value;
}

/** undefined when absent, null when null, else a list of model ids without repeats. */
export function optionalIdList(body: Body, name: string, max = 100): string[] | null | undefined {
  const v = body[name];
  if (v === undefined || v === null) return v as undefined | null;
  if (!Array.isArray(v) || v.length > max)
    throw ApiError.validation(`\`${name}\` must be a list of at most ${max} model ids`);
  const ids = v.map((x, i) => modelId(x, `${name}[${i}]`));
  if (new Set(ids).size !== ids.length) throw ApiError.validation(`\`${name}\` lists a model twice`);
  return ids;
}

export function uuid(value: string, name = 'id'): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) {
    throw ApiError.validation(`\`${name}\` must be a UUID`);
  }
  return value.toLowerCase();
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):?(\d{2}))?)?$/;

/**
 * An ISO 8601 timestamp with a four-digit year from 0001 to 9999 and a real calendar day. JavaScript's parser is
 * laxer: it rolls 2024-02-30 over to March and takes years Postgres cannot store (before 4713 BC).
 */
export function date(value: unknown, name: string): Date {
  const m = typeof value === 'string' ? ISO_DATE.exec(value) : null;
  const [year, month, day, hour, minute, second, offsetHour, offsetMinute] = [1, 2, 3, 4, 5, 6, 8, 9].map((i) =>
    Number(m?.[i] ?? 0),
  );
  const days = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !leap(year) ? 1 : 0);
  const valid =
    m !== null &&
    year >= 1 &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= days &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHour <= 23 &&
    offsetMinute <= 59;
  const d = valid ? new Date(value as string) : null;
  if (!d || Number.isNaN(d.getTime())) {
    throw ApiError.validation(`\`${name}\` must be an ISO 8601 date from year 0001 to 9999, like 2026-01-31T00:00:00Z`);
  }
  return d;
}

function leap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
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
 * Checks a parsed JSON value's shape before anything recurses into it (JSON.stringify, TypeORM, Postgres), by an
 * explicit stack: a body nested 100,000 deep parses, then overflows the call stack of whatever walks it. Refuses
 * NUL in strings and keys too, which Postgres's jsonb cannot hold.
 */
export function boundedJson(value: unknown, name: string, bounds: JsonBounds): void {
  const refuse = (why: string): never => {
    throw ApiError.validation(`\`${name}\` ${why}`);
  };
  const stack: [unknown, number][] = [[value, 1]];
  let values = 0;
  let chars = 0;
  const text = (s: string) => {
    chars += s.length;
    if (chars > bounds.maxChars) refuse(`holds more than ${bounds.maxChars} characters of text`);
    if (s.includes('\0')) refuse('must not contain a NUL character');
  };
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (++values > bounds.maxValues) refuse(`holds more than ${bounds.maxValues} values`);
    if (typeof v === 'string') text(v);
    if (v === null || typeof v !== 'object') continue;
    if (depth > bounds.maxDepth) refuse(`must not nest objects or lists more than ${bounds.maxDepth} deep`);
    if (Array.isArray(v)) for (const item of v) stack.push([item, depth + 1]);
    else {
      for (const [key, item] of Object.entries(v)) {
        text(key);
        stack.push([item, depth + 1]);
      }
    }
  }
}
