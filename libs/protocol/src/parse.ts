/**
 * How the protocol's readers apply its schemas: a value read from Redis that is not the shape is null (a reader
 * skips it), and a job or command that is not is a `ProtocolError` naming the bad fields (its job fails with it).
 */
import { z } from 'zod';

/** A payload that is not the shape the protocol says: a bad job or command fails with it, naming what is wrong. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** `raw` as JSON of `schema`'s shape, or null: not JSON, or another shape (half-written, foreign, another version's). */
export function parseJson<S extends z.ZodType>(schema: S, raw: string): z.output<S> | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : null;
}

/** `value` of `schema`'s shape, or a `ProtocolError` that names `what` and each bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, what: string, value: unknown): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`);
  throw new ProtocolError(`malformed ${what}: ${issues.join('; ')}`);
}
