/**
 * Constrained decoding on the real demo model: sampled outputs under JSON Schemas and regexes are valid (checked
 * by ajv and by the platform's own RegExp, not by the automaton), close within tight budgets, and a seeded row
 * gives the same tokens alone and in a busy batch, constrained or not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Ajv from 'ajv';
import { loadModel, LoadedModel } from '@switchyard/models';
import { modelDir } from '../../../test/support/repo';
import { jsonObjectRegex, jsonSchemaRegex } from './constraints';
import { Engine, GenerationResult } from './engine';
import { defaultParameters } from './parameters';
import { Rng } from './rng';
import type { EngineRequest, GenerationParameters } from './types';

let model: LoadedModel;
let engine: Engine;
let nextId = 0;
let prompt: number[];

function request(params: Partial<GenerationParameters>, inputIds = prompt): EngineRequest {
  return { id: `c${nextId++}`, inputIds, parameters: defaultParameters({ maxNewTokens: 64, ...params }) };
}

const sampled = (seed: number, grammar: string | null, extra: Partial<GenerationParameters> = {}) =>
  request({ doSample: true, temperature: 1, seed, grammar, ...extra });
const ids = (result: GenerationResult) => result.tokens.map((t) => t.token.id);

const SCHEMAS: object[] = [
  {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 16 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      tags: { type: 'array', items: { enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 },
    },
    required: ['name', 'age', 'tags'],
    additionalProperties: false,
  },
  {
    type: 'object',
    properties: {
      point: { type: 'object', properties: { x: { type: 'number' }, y: { type: 'number' } }, required: ['x', 'y'] },
      label: { anyOf: [{ type: 'string', maxLength: 8 }, { type: 'null' }] },
    },
    required: ['point', 'label'],
  },
  { type: 'array', items: { type: 'boolean' }, minItems: 2, maxItems: 4 },
];

describe('constrained decoding on demo-small', () => {
  before(async () => {
    model = await loadModel(modelDir('demo-small'));
    engine = new Engine(model);
    prompt = model.tokenizer.encode('<|im_start|>user\nAnswer in JSON.<|im_end|>\n<|im_start|>assistant\n');
  });
  after(() => engine.drain());

  it('sampled outputs under JSON Schemas parse and validate, and end as complete texts', async () => {
    const ajv = new Ajv();
    for (const schema of SCHEMAS) {
      const validate = ajv.compile(schema);
      const grammar = jsonSchemaRegex(schema);
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => engine.generate(sampled(i, grammar))));
      for (const { final } of results) {
        const value: unknown = JSON.parse(final.generatedText);
        assert.ok(validate(value), `${final.generatedText}: ${ajv.errorsText(validate.errors)}`);
        assert.equal(final.details.finishReason, 'eos_token');
      }
    }
  });

  it('JSON mode and a regex: every output is an object, or matches in full', async () => {
    for (let seed = 0; seed < 6; seed++) {
      const { final } = await engine.generate(sampled(seed, jsonObjectRegex()));
      const value: unknown = JSON.parse(final.generatedText);
      assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), final.generatedText);
    }
    const phone = String.raw`\(\d{3}\) \d{3}-\d{4}`;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => engine.generate(sampled(i, phone))));
    for (const { final } of results) assert.match(final.generatedText, new RegExp(`^${phone}$`, 'u'));
  });

  it('closes the text within a tight budget, and ends at `length` when no text fits', async () => {
    const schema = { type: 'object', properties: { note: { type: 'string' } }, required: ['note'] };
    const grammar = jsonSchemaRegex(schema); // the shortest text, {"note":""}, is 11 characters
    for (let seed = 0; seed < 6; seed++) {
      const { final } = await engine.generate(sampled(seed, grammar, { maxNewTokens: 12 }));
      assert.equal(typeof (JSON.parse(final.generatedText) as { note: unknown }).note, 'string');
      assert.ok(final.details.generatedTokens <= 12);
    }
    const { final } = await engine.generate(sampled(1, grammar, { maxNewTokens: 3 }));
    assert.equal(final.details.finishReason, 'length');
    assert.equal(final.details.generatedTokens, 3);
  });

  it('a greedy constrained row and a grammar of one text give that text', async () => {
    const { final } = await engine.generate(request({ grammar: 'hello world' }));
    assert.equal(final.generatedText, 'hello world');
    assert.equal(final.details.finishReason, 'eos_token');
  });

  it('a seeded row gives the same tokens alone and in a busy batch, constrained or not', async () => {
    const grammar = jsonSchemaRegex(SCHEMAS[0]);
    for (const g of [null, grammar]) {
      const alone = await engine.generate(sampled(1234, g, { maxNewTokens: 40 }));
      const rng = new Rng(99);
      const crowd = Array.from({ length: 24 }, (_, i) => {
        const length = 3 + Math.floor(rng.next() * 40);
        const filler = Array.from({ length }, () => 300 + Math.floor(rng.next() * 7000));
        return engine.generate(
          request(
            { doSample: i % 2 === 0, seed: i, grammar: i % 3 === 0 ? grammar : null, maxNewTokens: 10 + i },
            filler,
          ),
        );
      });
      const [busy] = await Promise.all([engine.generate(sampled(1234, g, { maxNewTokens: 40 })), ...crowd]);
      assert.deepEqual(ids(busy), ids(alone), `grammar: ${g !== null}`);
    }
  });
});
