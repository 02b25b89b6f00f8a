import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { MAX_KEEP_ALIVE_MS, parseDuration, parseKeepAlive } from './protocol';

describe("keep_alive (Ollama's)", () => {
  it('reads durations and seconds; negative keeps, 0 unloads', () => {
    assert.equal(parseKeepAlive(undefined), undefined);
    assert.equal(parseKeepAlive(null), undefined);
    assert.equal(parseKeepAlive('5m'), 300_000);
    assert.equal(parseKeepAlive('30s'), 30_000);
    assert.equal(parseKeepAlive('1.5h'), 5_400_000);
    assert.equal(parseKeepAlive('250ms'), 250);
    assert.equal(parseKeepAlive('10'), 10_000, 'a bare number in a string is seconds');
    assert.equal(parseKeepAlive(10), 10_000);
    assert.equal(parseKeepAlive(0), 0);
    assert.equal(parseKeepAlive('0'), 0);
    assert.equal(parseKeepAlive(-1), -1);
    assert.equal(parseKeepAlive('-5m'), -1);
  });

  it('refuses what is not a duration, and more than a week', () => {
    for (const bad of ['soon', '5 minutes', true, {}, [], Number.NaN, Infinity]) {
      assert.throws(() => parseKeepAlive(bad), /`keep_alive` must be a duration/, inspect(bad));
    }
    assert.equal(parseKeepAlive(MAX_KEEP_ALIVE_MS / 1000), MAX_KEEP_ALIVE_MS);
    assert.throws(() => parseKeepAlive('8d'), /must be a duration/);
    assert.throws(() => parseKeepAlive('169h'), /at most 7 days/);
  });
});

describe('parseDuration', () => {
  it('reads ms, s, m and h, and bare seconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('5m'), 300_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('2'), 2000);
    assert.equal(parseDuration(' -1.5s '), -1500);
    for (const bad of ['5 minutes', '', '1d', '1.s', 'ms']) assert.equal(parseDuration(bad), null, bad);
  });
});
