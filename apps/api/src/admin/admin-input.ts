/**
 * Strict reading of admin request bodies: known fields only, each with its type and bounds, and a 422 that
 * names the field otherwise. Nothing a client sends reaches SQL except as a bound parameter.
 */
import { isValidId } from '@switchyard/batching';
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

export function string(body: Body, name: string, max: number): string {
  const v = body[name];
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > max) {
    throw ApiError.validation(`\`${name}\` must be a non-empty string of at most ${max} characters`);
  }
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

/** An ISO 8601 timestamp. */
export function date(value: unknown, name: string): Date {
  const d = typeof value === 'string' && value.length <= 64 ? new Date(value) : new Date(NaN);
  if (Number.isNaN(d.getTime()))
    throw ApiError.validation(`\`${name}\` must be an ISO 8601 date, like 2026-01-31T00:00:00Z`);
  return d;
}
