import { ApiError } from '../common/api-error';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MIN_REPETITION_PENALTY, MIN_TEMPERATURE, ValidationError, ValidationLimits } from '@switchyard/batching';
import { validateDefaultParameters, validateRequest } from './validate-request';

const limits: ValidationLimits = {
  maxStopSequences: 2,
  maxBestOf: 2,
  maxTopNTokens: 5,
  maxInputTokens: 10,
  maxTotalTokens: 20,
};
/** One token per character, so lengths are easy to reason about. */
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));

function rejects(parameters: unknown, message: RegExp, inputs: unknown = 'abc', stream = false): void {
  assert.throws(
    () => validateRequest(inputs, parameters, encode, limits, { stream }),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.errorType, 'validation');
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('request validation', () => {
  it('fills TGI’s defaults', () => {
    const { inputIds, parameters } = validateRequest('abc', undefined, encode, limits);
    assert.deepEqual(inputIds, [97, 98, 99]);
    assert.equal(parameters.doSample, false);
    assert.equal(parameters.maxNewTokens, 17, 'max_total_tokens - input tokens');
    assert.equal(parameters.seed, null);
    assert.equal(parameters.details, true);
  });

  it('turns sampling on for warpers, and always reports a seed when sampling', () => {
    const { parameters } = validateRequest('abc', { temperature: 0.7 }, encode, limits);
    assert.equal(parameters.doSample, true);
    assert.equal(typeof parameters.seed, 'number');
    assert.equal(validateRequest('abc', { do_sample: true, seed: 5 }, encode, limits).parameters.seed, 5);
  });

  it('truncates the prompt from the left', () => {
    assert.deepEqual(validateRequest('abcdef', { truncate: 2 }, encode, limits).inputIds, [101, 102]);
  });

  it('refuses each bad parameter with TGI’s message', () => {
    rejects({ temperature: 0 }, /`temperature` must be strictly positive/);
    rejects({ temperature: 'hot' }, /`temperature` must be a number/);
    rejects({ repetition_penalty: 0 }, /`repetition_penalty` must be strictly positive/);
    rejects({ frequency_penalty: 3 }, /`frequency_penalty` must be >= -2.0 and <= 2.0/);
    rejects({ top_p: 1 }, /`top_p` must be > 0.0 and < 1.0/);
    rejects({ typical_p: 0 }, /`typical_p` must be > 0.0 and < 1.0/);
    rejects({ top_k: 0 }, /`top_k` must be strictly positive/);
    rejects({ top_k: 1.5 }, /`top_k` must be an integer/);
    rejects({ max_new_tokens: 0 }, /`max_new_tokens` must be strictly positive/);
    rejects(
      { max_new_tokens: 18 },
      /`inputs` tokens \+ `max_new_tokens` must be <= 20. Given: 3 `inputs` tokens and 18/,
    );
    rejects({ stop: ['a', 'b', 'c'] }, /`stop` supports up to 2 stop sequences. Given: 3/);
    rejects({ stop: 'a' }, /`stop` must be a list of strings/);
    rejects({ best_of: 3 }, /`best_of` must be > 0 and <= 2. Given: 3/);
    rejects({ best_of: 2 }, /you must use sampling when `best_of` is > 1/);
    rejects({ best_of: 2, do_sample: true, seed: 1 }, /`seed` must not be set when `best_of` > 1/);
    rejects({ best_of: 2, do_sample: true }, /`best_of` != 1 is not supported when streaming tokens/, 'abc', true);
    rejects({ decoder_input_details: true }, /not supported when streaming/, 'abc', true);
    rejects({ top_n_tokens: 6 }, /`top_n_tokens` must be >= 0 and <= 5. Given: 6/);
    rejects({ truncate: 0 }, /`truncate` must be strictly positive and less than 10. Given: 0/);
    rejects({ seed: -1 }, /`seed` must be a non-negative integer/);
    rejects({ details: 'yes' }, /`details` must be a boolean/);
    rejects('nope', /`parameters` must be an object/);
  });

  it('refuses watermark and adapters as not supported', () => {
    rejects({ watermark: true }, /`watermark` is not supported/);
    rejects({ adapter_id: 'x' }, /`adapter_id` is not supported/);
  });

  it('turns a grammar into the regex the engine constrains with, and refuses one it cannot serve', () => {
    const grammar = (g: unknown) => validateRequest('abc', { grammar: g }, encode, limits).parameters.grammar;
    assert.equal(grammar({ type: 'regex', value: '[0-9]{3}' }), '[0-9]{3}');
    const json = grammar({ type: 'json', value: { type: 'object', properties: { a: { type: 'boolean' } } } });
    assert.ok(new RegExp(`^(?:${json})$`, 'u').test('{"a":true}'));
    assert.equal(grammar(null), null);
    const refused = (g: unknown, message: RegExp) =>
      assert.throws(
        () => grammar(g),
        (err: unknown) => {
          assert.ok(err instanceof ApiError);
          assert.equal(err.status, 422);
          assert.match(err.message, message);
          return true;
        },
      );
    refused({ type: 'regex', value: '(' }, /`grammar`: the regex does not compile/);
    refused({ type: 'regex', value: '(a+)\\1' }, /backreferences/);
    refused({ type: 'regex', value: 'a\\bc' }, /word boundaries/);
    refused({ type: 'json', value: { type: 'string', pattern: 'a+' } }, /`pattern` at # is not supported/);
    refused({ type: 'json', value: '{' }, /is a string that is not JSON/);
    refused({ type: 'json', value: 'x'.repeat(70_000) }, /`grammar` is too large/);
  });

  it('refuses a temperature or repetition_penalty too small for the sampler’s arithmetic', () => {
    rejects({ temperature: 5e-324 }, /`temperature` must be >= 0.0001/);
    rejects({ temperature: MIN_TEMPERATURE / 2 }, /`temperature` must be >= 0.0001/);
    rejects({ repetition_penalty: 1e-300 }, /`repetition_penalty` must be >= 0.0001/);
    const { parameters } = validateRequest(
      'abc',
      { temperature: MIN_TEMPERATURE, repetition_penalty: MIN_REPETITION_PENALTY },
      encode,
      limits,
    );
    assert.equal(parameters.temperature, MIN_TEMPERATURE);
    assert.equal(parameters.repetitionPenalty, MIN_REPETITION_PENALTY);
  });

  it('refuses empty, non-string and overlong inputs', () => {
    rejects({}, /`inputs` cannot be empty/, '');
    rejects({}, /`inputs` must be a string/, 42);
    rejects({}, /`inputs` tokens must be <= 10. Given: 11/, 'abcdefghijk');
  });
});

describe('default parameters', () => {
  const refuses = (raw: unknown, message: RegExp) =>
    assert.throws(
      () => validateDefaultParameters(raw, limits),
      (err: unknown) => err instanceof ValidationError && message.test(err.message),
      JSON.stringify(raw),
    );

  it('are checked as a request carrying them is, max_new_tokens included', () => {
    refuses({ max_new_tokens: -1 }, /`max_new_tokens` must be strictly positive/);
    refuses({ max_new_tokens: 1e9 }, /`max_new_tokens` must be <= 20/);
    refuses({ max_new_tokens: 2.5 }, /`max_new_tokens` must be an integer/);
    refuses({ temperature: 5e-324 }, /`temperature`/);
    refuses({ repetition_penalty: 1e-300 }, /`repetition_penalty`/);
    refuses({ top_p: 2 }, /`top_p`/);
    refuses({ stop: ['a', 'b', 'c'] }, /`stop` supports up to 2/);
    refuses('hot', /`parameters` must be an object/);
  });

  it('must suit streaming requests too', () => {
    refuses({ best_of: 2, do_sample: true }, /not supported when streaming/);
    refuses({ decoder_input_details: true }, /not supported when streaming/);
  });

  it('takes what any request may carry', () => {
    validateDefaultParameters({}, limits);
    validateDefaultParameters({ max_new_tokens: 19, temperature: 0.7, top_p: 0.9, stop: ['\n'], seed: 3 }, limits);
  });
});
