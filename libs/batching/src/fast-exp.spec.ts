import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expNonPositive, logSumExp } from './fast-exp';
import { Rng } from './rng';

describe('expNonPositive', () => {
  it('matches Math.exp to 1e-8 relative over the range sampling uses', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 200_000; i++) {
      const x = -rng.next() * 700;
      const expected = Math.exp(x);
      assert.ok(Math.abs(expNonPositive(x) - expected) <= expected * 1e-8, `exp(${x})`);
    }
    assert.equal(expNonPositive(0), 1);
    assert.equal(expNonPositive(-1000), 0);
  });

  it('gives log-sum-exp', () => {
    const values = Float32Array.from([1, 2, 3, -40]);
    const expected = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3) + Math.exp(-40));
    assert.ok(Math.abs(logSumExp(values, 3) - expected) < 1e-8);
  });
});
