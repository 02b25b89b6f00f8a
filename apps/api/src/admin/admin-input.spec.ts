import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApiError } from '../common/api-error';
import { boundedJson, date, string } from './admin-input';

/** Asserts a 422 `validation` whose message matches. */
function refused(run: () => unknown, message: RegExp, what: string): void {
  assert.throws(
    run,
    (err: unknown) =>
      err instanceof ApiError && err.status === 422 && err.errorType === 'validation' && message.test(err.message),
    what,
  );
}

describe('admin input', () => {
  it('refuses control characters in strings', () => {
    for (const bad of ['a\u0000b', 'line\nbreak', 'tab\there', '\u007f', 'c1\u0085']) {
      refused(() => string({ name: bad }, 'name', 200), /`name` must not contain a control character/, bad);
    }
    assert.equal(string({ name: 'team-a (ünïcode ok)' }, 'name', 200), 'team-a (ünïcode ok)');
  });

  it('takes ISO 8601 dates within years 0001 to 9999', () => {
    assert.equal(date('2026-01-31T00:00:00Z', 'at').toISOString(), '2026-01-31T00:00:00.000Z');
    assert.equal(date('2024-02-29', 'at').toISOString(), '2024-02-29T00:00:00.000Z');
    assert.equal(date('2026-01-31T10:20:30.123456+02:00', 'at').toISOString(), '2026-01-31T08:20:30.123Z');
    assert.equal(date('0001-01-01T00:00:00Z', 'at').getUTCFullYear(), 1);
    assert.equal(date('9999-12-31T23:59:59Z', 'at').getUTCFullYear(), 9999);
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
    for (const value of bad) {
      refused(() => date(value, 'expires_at'), /`expires_at` must be an ISO 8601 date/, JSON.stringify(value));
    }
  });

  it('bounds a JSON value’s depth, size and text before anything recurses into it', () => {
    const bounds = { maxDepth: 4, maxValues: 100, maxChars: 1000 };
    boundedJson({ stop: ['\n\n'], temperature: 0.5, nested: { a: [1] } }, 'p', bounds);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { a: deep };
    refused(() => boundedJson(deep, 'p', bounds), /`p` must not nest objects or lists more than 4 deep/, 'deep');
    refused(() => boundedJson({ a: { b: { c: { d: {} } } } }, 'p', bounds), /more than 4 deep/, 'five objects');
    boundedJson({ a: { b: { c: { d: 1 } } } }, 'p', bounds);
    refused(() => boundedJson({ list: new Array(200).fill(0) }, 'p', bounds), /more than 100 values/, 'wide');
    refused(() => boundedJson({ s: 'x'.repeat(2000) }, 'p', bounds), /more than 1000 characters/, 'long');
    refused(() => boundedJson({ stop: ['\u0000'] }, 'p', bounds), /NUL/, 'NUL in a string');
    refused(() => boundedJson({ 'a\u0000': 1 }, 'p', bounds), /NUL/, 'NUL in a key');
  });
});
