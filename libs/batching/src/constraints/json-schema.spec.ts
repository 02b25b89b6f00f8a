import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Ajv from 'ajv';
import { Rng } from '../rng';
import { Automaton, compileGrammar } from './automaton';
import { GrammarError } from './errors';
import { choiceRegex, jsonObjectRegex, jsonSchemaRegex } from './json-schema';

/** A random text of the automaton's language: a walk that keeps within `budget` characters of acceptance. */
function randomText(automaton: Automaton, rng: Rng, budget = 200): string {
  let state = automaton.initial;
  let text = '';
  for (let left = budget; ; left--) {
    const out = automaton.out(state);
    if (automaton.accepting[state] && (out.length === 0 || rng.next() < 0.25)) return text;
    const choices: number[] = [];
    for (let i = 0; i < out.length; i += 3) if (automaton.distance[out[i + 2]] < left) choices.push(i);
    assert.ok(choices.length > 0, `stuck at state ${state} after ${JSON.stringify(text)}`);
    const i = choices[Math.floor(rng.next() * choices.length)];
    // a printable ASCII character where the range has one, so that the texts read like JSON
    const lo = out[i];
    const hi = out[i + 1];
    const printLo = Math.max(lo, 0x20);
    const printHi = Math.min(hi, 0x7e);
    const char = printLo <= printHi ? printLo + Math.floor(rng.next() * (printHi - printLo + 1)) : lo;
    text += String.fromCodePoint(char);
    state = out[i + 2];
  }
}

const schemas: Record<string, object> = {
  'flat object': {
    type: 'object',
    properties: { name: { type: 'string' }, age: { type: 'integer' }, ok: { type: 'boolean' } },
    required: ['name', 'age', 'ok'],
    additionalProperties: false,
  },
  'optional properties': {
    type: 'object',
    properties: { a: { type: 'integer' }, b: { type: 'string' }, c: { type: 'null' } },
    required: ['b'],
  },
  'nested arrays with bounds': {
    type: 'object',
    properties: {
      rows: {
        type: 'array',
        items: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 3 },
        minItems: 2,
      },
    },
    required: ['rows'],
  },
  'enums and consts': {
    type: 'object',
    properties: { kind: { enum: ['cat', 'dog', 3, null] }, version: { const: 'v1' } },
    required: ['kind', 'version'],
  },
  'bounded integers': {
    type: 'array',
    items: { type: 'integer', minimum: -17, maximum: 150 },
    minItems: 3,
    maxItems: 6,
  },
  'exclusive bounds': { type: 'integer', exclusiveMinimum: 5, exclusiveMaximum: 9 },
  'bounded numbers': { type: 'array', items: { type: 'number', minimum: -2.5, maximum: 7.25 }, minItems: 5 },
  'anyOf and type lists': {
    type: 'object',
    properties: {
      value: {
        anyOf: [
          { type: 'string', maxLength: 3 },
          { type: 'integer', minimum: 0 },
        ],
      },
      maybe: { type: ['boolean', 'null'] },
    },
    required: ['value', 'maybe'],
  },
  'string lengths': { type: 'string', minLength: 2, maxLength: 5 },
  formats: {
    type: 'object',
    properties: { day: { type: 'string', format: 'date' }, id: { type: 'string', format: 'uuid' } },
    required: ['day', 'id'],
  },
  'local refs': {
    $defs: {
      point: { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } }, required: ['x', 'y'] },
    },
    type: 'object',
    properties: { from: { $ref: '#/$defs/point' }, to: { $ref: '#/$defs/point' } },
    required: ['from', 'to'],
  },
  'any value inside': { type: 'object', properties: { extra: {} }, required: ['extra'] },
};

describe('JSON Schema grammars', () => {
  const ajv = new Ajv({ strict: false });
  ajv.addFormat('date', /^\d{4}-\d{2}-\d{2}$/);
  ajv.addFormat('uuid', /^[0-9a-f-]{36}$/);

  for (const [name, schema] of Object.entries(schemas)) {
    it(`every text of the grammar is JSON that ajv validates: ${name}`, () => {
      const automaton = compileGrammar(jsonSchemaRegex(schema));
      const validate = ajv.compile(schema);
      const rng = new Rng(7);
      for (let i = 0; i < 60; i++) {
        const text = randomText(automaton, rng);
        let value: unknown;
        assert.doesNotThrow(() => (value = JSON.parse(text)), `not JSON: ${text}`);
        assert.ok(validate(value), `${text}: ${ajv.errorsText(validate.errors)}`);
      }
    });
  }

  it('takes the compact texts of valid values and refuses invalid ones', () => {
    const grammar = compileGrammar(jsonSchemaRegex(schemas['optional properties']));
    for (const ok of ['{"b":""}', '{"a":-3,"b":"x"}', '{"b":"x","c":null}', '{"a":0,"b":"\\u00e9","c":null}']) {
      assert.ok(grammar.matches(ok), ok);
    }
    for (const bad of ['{}', '{"a":1}', '{"b":"x","a":1}', '{"a":01,"b":""}', '{ "b":""}', '{"b":"x",}']) {
      assert.ok(!grammar.matches(bad), bad);
    }
    const ints = compileGrammar(jsonSchemaRegex(schemas['bounded integers']));
    assert.ok(ints.matches('[-17,0,150]'));
    assert.ok(!ints.matches('[-18,0,150]'));
    assert.ok(!ints.matches('[0,151,2]'));
    assert.ok(!ints.matches('[1,2]'));
    const exclusive = compileGrammar(jsonSchemaRegex(schemas['exclusive bounds']));
    assert.deepEqual(
      [4, 5, 6, 7, 8, 9].filter((n) => exclusive.matches(String(n))),
      [6, 7, 8],
    );
  });

  it('JSON mode takes any object, nested, and nothing else', () => {
    const grammar = compileGrammar(jsonObjectRegex());
    assert.ok(grammar.matches('{"a":[1,{"b":null}],"c":"d"}'));
    assert.ok(!grammar.matches('[1]'));
    assert.ok(!grammar.matches('"x"'));
    const rng = new Rng(3);
    for (let i = 0; i < 50; i++) {
      const value: unknown = JSON.parse(randomText(grammar, rng));
      assert.equal(typeof value, 'object');
      assert.ok(value !== null && !Array.isArray(value));
    }
  });

  it('a choice matches exactly its options', () => {
    const grammar = compileGrammar(choiceRegex(['get_weather', 'a.b', '(x)']));
    for (const option of ['get_weather', 'a.b', '(x)']) assert.ok(grammar.matches(option));
    assert.ok(!grammar.matches('axb'));
    assert.ok(!grammar.matches('get_weathe'));
  });

  it('refuses what it cannot honour, by name', () => {
    const refused = (schema: unknown, message: RegExp) =>
      assert.throws(
        () => jsonSchemaRegex(schema),
        (err: unknown) => err instanceof GrammarError && message.test(err.message),
      );
    refused({ type: 'string', pattern: '^a' }, /`pattern` at # is not supported/);
    refused({ type: 'array', uniqueItems: true }, /`uniqueItems` at # is not supported/);
    refused({ oneOf: [{ type: 'string' }] }, /`oneOf` at # is not supported/);
    refused({ type: 'string', format: 'email' }, /`format: "email"` at # is not supported/);
    refused({ $defs: { n: { type: 'array', items: { $ref: '#/$defs/n' } } }, $ref: '#/$defs/n' }, /recursive/);
    refused({ $ref: '#/$defs/missing' }, /points at nothing/);
    refused({ type: 'object', properties: {}, required: ['x'] }, /names `x`, which is not in `properties`/);
    refused({ type: 'integer', minimum: 5, maximum: 4 }, /leave no integer/);
    refused({ type: 'date' }, /`type` at # must be one of/);
    refused('string', /must be an object/);
  });
});
