import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StepBuffers } from './step-buffers';

describe('step buffers', () => {
  it('views one array per input, grown to the largest call and then reused', () => {
    const buffers = new StepBuffers();
    const big = buffers.idsView(100);
    assert.equal(big.length, 100);
    assert.equal(big.buffer.byteLength, 128 * 8, 'grown to a power of two');
    const small = buffers.idsView(3);
    assert.equal(small.length, 3);
    assert.equal(small.buffer, big.buffer, 'a smaller call views the same array');
    assert.notEqual(buffers.positionsView(3).buffer, small.buffer, 'each input has its own');
    assert.notEqual(buffers.idsView(200).buffer, big.buffer, 'a larger call grows it');
  });

  it('builds the attention mask of left-padded rows in place', () => {
    const buffers = new StepBuffers();
    assert.deepEqual([...buffers.maskView([2, 0, 3], 3)], [0n, 0n, 1n, 1n, 1n, 1n, 0n, 0n, 0n]);
    // A later, smaller mask overwrites every column it views.
    const again = buffers.maskView([0, 1], 2);
    assert.deepEqual([...again], [1n, 1n, 0n, 1n]);
  });

  it('fills the identity index once and views it after', () => {
    const buffers = new StepBuffers();
    const first = buffers.identityIndex(5);
    assert.deepEqual([...first], [0n, 1n, 2n, 3n, 4n]);
    assert.equal(buffers.identityIndex(3).buffer, first.buffer);
    const grown = buffers.identityIndex(70);
    assert.notEqual(grown.buffer, first.buffer);
    assert.deepEqual([...grown.subarray(64)], [64n, 65n, 66n, 67n, 68n, 69n]);
  });
});
