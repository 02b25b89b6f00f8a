import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { ApiError } from '../common/api-error';
import { parseWith } from '../common/schema';
import {
  ApiKeyParams,
  boundedObject,
  CreateApiKeyRequest,
  CreateModelRequest,
  isoDate,
  ModelParams,
  text,
  UpdateModelRequest,
  UsageQuery,
} from './admin.schemas';

/** Asserts a 422 `validation` with exactly this message (a string) or a matching one (a RegExp). */
function refused(schema: z.ZodType, value: unknown, message: string | RegExp, what = JSON.stringify(value)): void {
  assert.throws(
    () => parseWith(schema, value),
    (err: unknown) => {
      assert.ok(err instanceof ApiError && err.status === 422 && err.errorType === 'validation', what);
      if (typeof message === 'string') assert.equal(err.message, message, what);
      else assert.match(err.message, message, what);
      return true;
    },
    what,
  );
}

const NAME = '`name` must be a non-empty string of at most 200 characters';
const ID = '`id` must be 1-128 letters, digits or . _ - (starting with a letter or digit)';

describe('admin request schemas', () => {
  it('refuses control characters in strings', () => {
    for (const bad of ['a\u0000b', 'line\nbreak', 'tab\there', '\u007f', 'c1\u0085']) {
      refused(text('name', 200), bad, '`name` must not contain a control character', bad);
      refused(CreateApiKeyRequest, { name: bad }, '`name` must not contain a control character', bad);
    }
    assert.equal(parseWith(text('name', 200), 'team-a (ünïcode ok)'), 'team-a (ünïcode ok)');
    refused(CreateModelRequest, { id: 'm', path: '/models/m\u0001' }, '`path` must not contain a control character');
  });

  it('refuses a blank, missing or too long name, before its control characters', () => {
    for (const bad of [undefined, 42, '', '   ', '\n', 'x'.repeat(201), `${'x'.repeat(201)}\n`]) {
      refused(CreateApiKeyRequest, { name: bad }, NAME);
    }
    refused(
      CreateModelRequest,
      { id: 'm', path: 'x'.repeat(4097) },
      '`path` must be a non-empty string of at most 4096 characters',
    );
  });

  it('takes ISO 8601 dates within years 0001 to 9999', () => {
    const at = isoDate('at');
    assert.equal(parseWith(at, '2026-01-31T00:00:00Z').toISOString(), '2026-01-31T00:00:00.000Z');
    assert.equal(parseWith(at, '2024-02-29').toISOString(), '2024-02-29T00:00:00.000Z');
    assert.equal(parseWith(at, '2026-01-31T10:20:30.123456+02:00').toISOString(), '2026-01-31T08:20:30.123Z');
    assert.equal(parseWith(at, '0001-01-01T00:00:00Z').getUTCFullYear(), 1);
    assert.equal(parseWith(at, '9999-12-31T23:59:59Z').getUTCFullYear(), 9999);
    const key = parseWith(CreateApiKeyRequest, { name: 'k', expires_at: '2099-12-31T23:59:59Z' });
    assert.equal(key.expires_at?.toISOString(), '2099-12-31T23:59:59.000Z');
    assert.equal(parseWith(CreateApiKeyRequest, { name: 'k', expires_at: null }).expires_at, null);
    assert.equal(parseWith(CreateApiKeyRequest, { name: 'k' }).expires_at, null);
  });

  it('refuses dates out of range or off the calendar', () => {
    const bad: unknown[] = [
      '300000-01-01',
      '+275000-01-01T00:00:00Z',
      '-010000-01-01T00:00:00Z',
      '0000-01-01T00:00:00Z',
      '2024-13-45',
      '2024-02-30T00:00:00Z',
      '2023-02-29',
      '2024-04-31',
      '2024-01-01T24:00:00Z',
      '2024-01-01T23:60:00Z',
      '2024-01-01T23:59:60Z',
      'Tue Feb 30 2024',
      '12/31/99999',
      '99999999999999999999',
      'tomorrow',
      '',
      8.64e15 + 1,
      1_700_000_000_000,
      null,
      ['2024-01-01'],
    ];
    const message = '`expires_at` must be an ISO 8601 date from year 0001 to 9999, like 2026-01-31T00:00:00Z';
    for (const value of bad) {
      refused(isoDate('expires_at'), value, message);
      if (value !== null) refused(CreateApiKeyRequest, { name: 'k', expires_at: value }, message);
    }
  });

  it('bounds a JSON value’s depth, size and text before anything recurses into it', () => {
    const bounded = boundedObject('p', { maxDepth: 4, maxValues: 100, maxChars: 1000 }, '`p` must be an object');
    parseWith(bounded, { stop: ['\n\n'], temperature: 0.5, nested: { a: [1] } });
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    refused(bounded, deep, '`p` must not nest objects or lists more than 4 deep', 'deep');
    refused(bounded, { a: { b: { c: { d: {} } } } }, /more than 4 deep/, 'five objects');
    parseWith(bounded, { a: { b: { c: { d: 1 } } } });
    refused(bounded, { list: new Array(200).fill(0) }, '`p` holds more than 100 values', 'wide');
    refused(bounded, { s: 'x'.repeat(2000) }, '`p` holds more than 1000 characters of text', 'long');
    refused(bounded, { stop: ['\u0000'] }, '`p` must not contain a NUL character', 'NUL in a string');
    refused(bounded, { 'a\u0000': 1 }, '`p` must not contain a NUL character', 'NUL in a key');
    for (const bad of [null, [], 'x', 1]) refused(bounded, bad, '`p` must be an object');
    refused(UpdateModelRequest, { default_parameters: [] }, '`default_parameters` must be an object of TGI parameters');
    refused(UpdateModelRequest, { default_parameters: deep }, /^`default_parameters` must not nest/, 'deep');
  });

  it('refuses unknown fields first, and bodies that are not objects', () => {
    refused(
      CreateApiKeyRequest,
      { name: 42, surprise: 1, ['x'.repeat(100)]: 2 },
      `unknown field(s): "surprise", "${'x'.repeat(64)}"`,
    );
    refused(UpdateModelRequest, { id: 'm' }, 'unknown field(s): "id"');
    for (const bad of [[1, 2, 3], null, 'x', 42]) {
      refused(CreateApiKeyRequest, bad, 'the request body must be a JSON object');
    }
    refused(UsageQuery, { to: 'x', a: '1', b: '2' }, 'unknown query parameter(s): a, b');
  });

  it('reads scopes, limits and model lists as the keys route always has', () => {
    const scopes = '`scopes` must be a non-empty list of "inference" and "admin"';
    for (const bad of [null, [], ['root'], 'admin', ['admin', 'inference', 'admin']]) {
      refused(CreateApiKeyRequest, { name: 'k', scopes: bad }, scopes);
    }
    assert.deepEqual(parseWith(CreateApiKeyRequest, { name: 'k' }).scopes, ['inference']);
    assert.deepEqual(parseWith(CreateApiKeyRequest, { name: 'k', scopes: ['admin', 'admin'] }).scopes, ['admin']);
    const rpm = '`rpm_limit` must be a positive integer up to 1000000000, or null';
    for (const bad of ['5', 0, -1, 1.5, 1_000_000_001, true])
      refused(CreateApiKeyRequest, { name: 'k', rpm_limit: bad }, rpm);
    assert.equal(parseWith(CreateApiKeyRequest, { name: 'k', tpm_limit: null }).tpm_limit, null);
    const list = '`allowed_models` must be a list of at most 100 model ids';
    refused(CreateApiKeyRequest, { name: 'k', allowed_models: 'small' }, list);
    refused(CreateApiKeyRequest, { name: 'k', allowed_models: new Array(101).fill(1) }, list);
    refused(
      CreateApiKeyRequest,
      { name: 'k', allowed_models: ['ok', 'not ok'] },
      '`allowed_models[1]` must be 1-128 letters, digits or . _ - (starting with a letter or digit)',
    );
    refused(CreateApiKeyRequest, { name: 'k', allowed_models: ['a', 'a'] }, '`allowed_models` lists a model twice');
    refused(
      UpdateModelRequest,
      { fallbacks: "'; DELETE FROM models;--" },
      '`fallbacks` must be a list of at most 100 model ids',
    );
    assert.equal(parseWith(UpdateModelRequest, { fallbacks: null }).fallbacks, null);
  });

  it('reads a model’s fields with their messages', () => {
    for (const bad of ["x'; DROP TABLE models;--", 'a'.repeat(129), 'a\u0000b', '-a', 42]) {
      refused(CreateModelRequest, { id: bad, path: '/m' }, ID);
      refused(ModelParams, { id: bad }, ID);
    }
    refused(CreateModelRequest, { id: 'm', path: '/m', enabled: 'yes' }, '`enabled` must be a boolean');
    refused(CreateModelRequest, { id: 'm', path: '/m', pinned: null }, '`pinned` must be a boolean');
    refused(UpdateModelRequest, { quantize: 4 }, '`quantize` must be none, q8, q4 or null');
    refused(UpdateModelRequest, { quantize: 'gptq' }, /^`quantize`: "gptq" is one of TGI's methods .* q8 or q4/);
    refused(UpdateModelRequest, { quantize: 'q3' }, '`quantize`: "q3" is not a quantization: use none, q8 or q4');
    assert.equal(parseWith(UpdateModelRequest, { quantize: ' Q8 ' }).quantize, 'q8');
    assert.equal(parseWith(UpdateModelRequest, { quantize: null }).quantize, null);
    refused(
      UpdateModelRequest,
      { keep_alive: true },
      '`keep_alive` must be a duration like "5m", "30s" or "-1", or a number of seconds',
    );
    refused(UpdateModelRequest, { keep_alive: 'soon' }, /^`keep_alive` must be a duration like .*; got "soon"$/);
    refused(UpdateModelRequest, { keep_alive: '8d' }, /^`keep_alive` must be a duration/);
    refused(UpdateModelRequest, { keep_alive: 8 * 86_400 }, /^`keep_alive` may be at most 7 days/);
    assert.equal(parseWith(UpdateModelRequest, { keep_alive: '5m' }).keep_alive, 300_000);
    assert.equal(parseWith(UpdateModelRequest, { keep_alive: -5 }).keep_alive, -1);
    assert.equal(parseWith(UpdateModelRequest, { keep_alive: null }).keep_alive, null);
    assert.equal(parseWith(UpdateModelRequest, {}).keep_alive, undefined);
    refused(
      CreateModelRequest,
      { id: 'm', path: '/m', max_total_tokens: -5 },
      "`max_total_tokens` must be a positive integer up to the model's context, or null",
    );
  });

  it('checks fields in the order the routes always have', () => {
    // create: id, path, quantize, enabled, ...; update: quantize, keep_alive, path, ...
    refused(CreateModelRequest, { quantize: 4, path: '', id: '-' }, ID);
    refused(
      CreateModelRequest,
      { quantize: 4, enabled: 1, id: 'm', path: '/m' },
      '`quantize` must be none, q8, q4 or null',
    );
    refused(UpdateModelRequest, { path: '', keep_alive: true }, /^`keep_alive`/);
    refused(CreateApiKeyRequest, { name: 'k', rpm_limit: 0, expires_at: 'x', scopes: [] }, /^`scopes`/);
  });

  it('reads a key id and the usage query', () => {
    for (const bad of ['1 OR 1=1', '', '3f0c2a4e-8d1b-4f6a-9c2e-5b7d1e0a9f3'])
      refused(ApiKeyParams, { id: bad }, '`id` must be a UUID');
    const id = '3F0C2A4E-8D1B-4F6A-9C2E-5B7D1E0A9F34';
    assert.equal(parseWith(ApiKeyParams, { id }).id, id.toLowerCase());
    const usage = parseWith(UsageQuery, {});
    assert.equal(usage.group_by, 'model');
    assert.equal(usage.to.getTime() - usage.from.getTime(), 24 * 3600_000);
    refused(UsageQuery, { group_by: 'model; DROP TABLE usage_records' }, '`group_by` must be model, key or day');
    refused(UsageQuery, { from: 'yesterday' }, /^`from` must be an ISO 8601 date/);
    refused(UsageQuery, { to: ['2024-01-01', '2024-01-02'] }, /^`to` must be an ISO 8601 date/);
    refused(UsageQuery, { from: 'x', to: 'y' }, /^`to` must be an ISO 8601 date/);
    refused(UsageQuery, { from: '2024-01-02', to: '2024-01-01' }, '`from` must not be after `to`');
    const range = parseWith(UsageQuery, { from: '0001-01-01T00:00:00Z', to: '9999-12-31T23:59:59Z', group_by: 'day' });
    assert.equal(range.from.getUTCFullYear(), 1);
    assert.equal(range.group_by, 'day');
  });
});
