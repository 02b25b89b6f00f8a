/**
 * JSON Schema to regex: the texts a constrained row may produce are the compact JSON texts (no whitespace between
 * tokens, properties in the schema's order) that the schema accepts. The subset is OpenAI's strict mode: object,
 * array, string, number, integer, boolean, null, enum, const, required, `additionalProperties`, nested objects and
 * arrays with `minItems`/`maxItems`, `anyOf`, type lists and local `$ref`s, plus string lengths, integer and
 * number bounds and a few string formats. A keyword outside it is refused by name, never ignored: a grammar that
 * silently dropped `pattern` would let through outputs the client's validator rejects.
 */
import toRegexRange from 'to-regex-range';
import { GrammarError } from './errors';

/** Any character a JSON string may hold unescaped, or an escape. */
const STRING_CHAR = String.raw`(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})`;
const STRING = `"${STRING_CHAR}*"`;
const INTEGER = String.raw`-?(?:0|[1-9][0-9]*)`;
const NUMBER = String.raw`-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?`;
const LITERALS = 'true|false|null';
/** How deep a value of no stated shape (`{}`, `json_object`) may nest: a bound keeps the language regular. */
const ANY_DEPTH = 3;
/** The largest magnitude a bounded number's integer part may take when one side is open. */
const OPEN_BOUND = 999_999_999_999_999;

const FORMATS: Record<string, string> = {
  date: String.raw`[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])`,
  time: String.raw`(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])`,
  uuid: String.raw`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`,
};
FORMATS['date-time'] = `${FORMATS.date}T${FORMATS.time}`;

/** Keywords that describe a schema without constraining its values. */
const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$comment',
  '$defs',
  'definitions',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'strict',
  'name',
]);
const TYPE_KEYWORDS: Record<string, readonly string[]> = {
  object: ['properties', 'required', 'additionalProperties'],
  array: ['items', 'minItems', 'maxItems'],
  string: ['minLength', 'maxLength', 'format'],
  number: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  integer: ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'],
  boolean: [],
  null: [],
};
const GENERAL = new Set(['type', 'enum', 'const', 'anyOf', '$ref']);
const ALL_KNOWN = new Set([...ANNOTATIONS, ...GENERAL, ...Object.values(TYPE_KEYWORDS).flat()]);

/** Full-match regex (JavaScript syntax, `u` flag) for the compact JSON texts valid under `schema`. */
export function jsonSchemaRegex(schema: unknown): string {
  if (typeof schema !== 'boolean' && !isObject(schema)) throw new GrammarError('a JSON Schema must be an object');
  return new SchemaCompiler(schema).compile(schema, '#');
}

/** Full-match regex for any JSON object (OpenAI's `json_object`), nested to a bounded depth. */
export function jsonObjectRegex(): string {
  return objectOf(anyValue(ANY_DEPTH - 1));
}

/** Full-match regex for exactly one of `options`. */
export function choiceRegex(options: readonly string[]): string {
  if (options.length === 0) throw new GrammarError('a choice needs at least one option');
  return options.map(escapeRegex).join('|');
}

/** `text` as a regex that matches it literally (under the `u` flag, which refuses needless escapes). */
export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Any JSON value nested at most `depth` containers deep. */
function anyValue(depth: number): string {
  const scalars = `${STRING}|${NUMBER}|${LITERALS}`;
  if (depth <= 0) return `(?:${scalars})`;
  const inner = anyValue(depth - 1);
  return `(?:${scalars}|${objectOf(inner)}|${listOf(inner, 0, null)})`;
}

function objectOf(value: string): string {
  const member = `${STRING}:${value}`;
  return String.raw`\{(?:${member}(?:,${member})*)?\}`;
}

/** `[item,item,...]` with `min` to `max` (null: any number of) items. */
function listOf(item: string, min: number, max: number | null): string {
  if (max === 0) return String.raw`\[\]`;
  const more = `(?:,${item})${repeat(Math.max(min - 1, 0), max === null ? null : max - 1)}`;
  const items = `${item}${more}`;
  return String.raw`\[${min === 0 ? `(?:${items})?` : items}\]`;
}

function repeat(min: number, max: number | null): string {
  if (max === null) return min === 0 ? '*' : `{${min},}`;
  if (min === 0 && max === 1) return '?';
  return min === max ? `{${min}}` : `{${min},${max}}`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

class SchemaCompiler {
  /** `$ref`s being expanded, to refuse recursion (a recursive schema is not a regular language). */
  private readonly expanding: string[] = [];

  constructor(private readonly root: Record<string, unknown> | boolean) {}

  compile(schema: unknown, path: string): string {
    if (schema === true) return anyValue(ANY_DEPTH);
    if (schema === false) throw new GrammarError(`${path} is \`false\`: no value is valid`);
    if (!isObject(schema)) throw new GrammarError(`${path} must be a schema object`);
    for (const key of Object.keys(schema)) {
      if (!ALL_KNOWN.has(key)) {
        throw new GrammarError(
          `\`${key}\` at ${path} is not supported in a grammar (supported: type, properties, required, ` +
            'additionalProperties, items, minItems, maxItems, enum, const, anyOf, $ref, minLength, maxLength, ' +
            'format, minimum, maximum, exclusiveMinimum, exclusiveMaximum)',
        );
      }
    }
    if (schema.$ref !== undefined) return this.reference(schema.$ref, path);
    if (schema.const !== undefined) return literal(schema.const);
    if (schema.enum !== undefined) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0)
        throw new GrammarError(`\`enum\` at ${path} must be a non-empty list`);
      return `(?:${schema.enum.map(literal).join('|')})`;
    }
    if (schema.anyOf !== undefined) {
      if (!Array.isArray(schema.anyOf) || schema.anyOf.length === 0)
        throw new GrammarError(`\`anyOf\` at ${path} must be a non-empty list`);
      return `(?:${schema.anyOf.map((s, i) => this.compile(s, `${path}/anyOf/${i}`)).join('|')})`;
    }
    const { type } = schema;
    if (type === undefined) {
      // a schema with properties or items but no type is taken as what those keywords describe
      if (schema.properties !== undefined) return this.typed('object', schema, path);
      if (schema.items !== undefined) return this.typed('array', schema, path);
      return anyValue(ANY_DEPTH);
    }
    const types = Array.isArray(type) ? type : [type];
    if (types.length === 0) throw new GrammarError(`\`type\` at ${path} must not be an empty list`);
    return `(?:${types.map((t) => this.typed(t, schema, path)).join('|')})`;
  }

  private reference(ref: unknown, path: string): string {
    if (typeof ref !== 'string' || !ref.startsWith('#')) {
      throw new GrammarError(`\`$ref\` at ${path} must be a local reference ("#/$defs/...")`);
    }
    if (this.expanding.includes(ref))
      throw new GrammarError(`\`$ref\` ${ref} is recursive: recursive schemas are not supported`);
    let target: unknown = this.root;
    for (const part of ref.slice(1).split('/').filter(Boolean)) {
      const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
      target = isObject(target) ? target[key] : undefined;
    }
    if (target === undefined) throw new GrammarError(`\`$ref\` ${ref} at ${path} points at nothing`);
    this.expanding.push(ref);
    try {
      return this.compile(target, ref);
    } finally {
      this.expanding.pop();
    }
  }

  private typed(type: unknown, schema: Record<string, unknown>, path: string): string {
    if (typeof type !== 'string' || !(type in TYPE_KEYWORDS)) {
      throw new GrammarError(`\`type\` at ${path} must be one of ${Object.keys(TYPE_KEYWORDS).join(', ')}`);
    }
    switch (type) {
      case 'object':
        return this.object(schema, path);
      case 'array':
        return this.array(schema, path);
      case 'string':
        return stringOf(schema, path);
      case 'integer':
        return integerOf(schema, path);
      case 'number':
        return numberOf(schema, path);
      case 'boolean':
        return '(?:true|false)';
      default:
        return 'null';
    }
  }

  private object(schema: Record<string, unknown>, path: string): string {
    const properties = schema.properties ?? {};
    if (!isObject(properties)) throw new GrammarError(`\`properties\` at ${path} must be an object`);
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== 'string'))
      throw new GrammarError(`\`required\` at ${path} must be a list of property names`);
    for (const name of required as string[]) {
      if (!(name in properties))
        throw new GrammarError(`\`required\` at ${path} names \`${name}\`, which is not in \`properties\``);
    }
    const names = Object.keys(properties);
    if (names.length === 0) {
      // no declared property: any object when more are allowed, else only {}
      return schema.additionalProperties === false ? String.raw`\{\}` : objectOf(anyValue(ANY_DEPTH - 1));
    }
    const members = names.map(
      (name) => `${escapeRegex(JSON.stringify(name))}:${this.compile(properties[name], `${path}/properties/${name}`)}`,
    );
    const isRequired = names.map((name) => (required as string[]).includes(name));
    return String.raw`\{${membersFrom(members, isRequired, 0, false)}\}`;
  }

  private array(schema: Record<string, unknown>, path: string): string {
    const min = count(schema.minItems, 'minItems', path) ?? 0;
    const max = count(schema.maxItems, 'maxItems', path);
    if (max !== null && max < min) throw new GrammarError(`\`maxItems\` at ${path} is below \`minItems\``);
    const item = schema.items === undefined ? anyValue(ANY_DEPTH - 1) : this.compile(schema.items, `${path}/items`);
    return listOf(item, min, max);
  }
}

/**
 * The members of an object from index `i` on, in order, each required one present, each optional one present or
 * not, comma-separated: `emitted` says whether a member already precedes (so the next needs a comma).
 */
function membersFrom(members: string[], required: boolean[], i: number, emitted: boolean): string {
  if (i === members.length) return '';
  const member = `${emitted ? ',' : ''}${members[i]}`;
  const rest = membersFrom(members, required, i + 1, true);
  if (required[i]) return `${member}${rest}`;
  if (emitted) return `(?:${member})?${rest}`;
  return `(?:${member}${rest}|${membersFrom(members, required, i + 1, false)})`;
}

function literal(value: unknown): string {
  return escapeRegex(JSON.stringify(value));
}

function count(value: unknown, name: string, path: string): number | null {
  if (value === undefined) return null;
  if (!Number.isInteger(value) || (value as number) < 0)
    throw new GrammarError(`\`${name}\` at ${path} must be a non-negative integer`);
  return value as number;
}

function stringOf(schema: Record<string, unknown>, path: string): string {
  if (schema.format !== undefined) {
    const format = FORMATS[schema.format as string];
    if (format === undefined) {
      throw new GrammarError(
        `\`format: ${JSON.stringify(schema.format)}\` at ${path} is not supported (supported: ${Object.keys(FORMATS).join(', ')})`,
      );
    }
    return `"${format}"`;
  }
  const min = count(schema.minLength, 'minLength', path) ?? 0;
  const max = count(schema.maxLength, 'maxLength', path);
  if (max !== null && max < min) throw new GrammarError(`\`maxLength\` at ${path} is below \`minLength\``);
  if (min === 0 && max === null) return STRING;
  // a length counts characters, and an escape stands for one; astral characters count as one too
  return `"${STRING_CHAR}${repeat(min, max)}"`;
}

/** The integer bounds a schema sets, inclusive, or null for an open side. */
function bounds(schema: Record<string, unknown>, path: string, integer: boolean): [number | null, number | null] {
  const bound = (name: string) => {
    const v = schema[name];
    if (v === undefined) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new GrammarError(`\`${name}\` at ${path} must be a number`);
    return v;
  };
  const [min, max, xmin, xmax] = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].map(bound);
  const lows = [min === null ? null : Math.ceil(min), xmin === null ? null : Math.floor(xmin) + 1].filter(
    (v) => v !== null,
  );
  const highs = [max === null ? null : Math.floor(max), xmax === null ? null : Math.ceil(xmax) - 1].filter(
    (v) => v !== null,
  );
  const lo = lows.length ? Math.max(...lows) : null;
  const hi = highs.length ? Math.min(...highs) : null;
  for (const v of [lo, hi]) {
    if (v !== null && Math.abs(v) > OPEN_BOUND)
      throw new GrammarError(`bounds at ${path} must be within ±${OPEN_BOUND}`);
  }
  if (lo !== null && hi !== null && lo > hi) {
    throw new GrammarError(`the bounds at ${path} leave no ${integer ? 'integer' : 'value the grammar can write'}`);
  }
  return [lo, hi];
}

const range = (lo: number, hi: number) => toRegexRange(lo, hi, { capture: false, shorthand: false });

function integerOf(schema: Record<string, unknown>, path: string): string {
  const [lo, hi] = bounds(schema, path, true);
  if (lo === null && hi === null) return INTEGER;
  return `(?:${range(lo ?? -OPEN_BOUND, hi ?? OPEN_BOUND)})`;
}

/**
 * A bounded number: the integers within the bounds, and decimals whose integer part keeps every fraction within
 * them (i.ddd for 0 <= i <= hi - 1, -k.ddd for 1 <= k <= -lo - 1). Values between a fractional bound and the
 * nearest integer are left out: every output is valid, not every valid value is reachable.
 */
function numberOf(schema: Record<string, unknown>, path: string): string {
  const [lo0, hi0] = bounds(schema, path, false);
  if (lo0 === null && hi0 === null) return NUMBER;
  const lo = lo0 ?? -OPEN_BOUND;
  const hi = hi0 ?? OPEN_BOUND;
  const parts = [range(lo, hi)];
  const fraction = String.raw`\.[0-9]+`;
  if (Math.max(0, lo) <= hi - 1) parts.push(`(?:${range(Math.max(0, lo), hi - 1)})${fraction}`);
  if (Math.max(1, -hi) <= -lo - 1) parts.push(`-(?:${range(Math.max(1, -hi), -lo - 1)})${fraction}`);
  return `(?:${parts.join('|')})`;
}
