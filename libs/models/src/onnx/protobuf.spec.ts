import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { modelDir } from '../../../../test/support/repo';
import {
  bytesField,
  decode,
  encode,
  first,
  firstString,
  Message,
  messageField,
  strings,
  varintField,
} from './protobuf';

describe('protobuf wire codec', () => {
  it('round-trips varints (negative ones as 10 bytes), strings, bytes and nested messages', () => {
    const nested: Message = [varintField(1, 300), bytesField(2, 'héllo')];
    const message: Message = [
      varintField(1, 0),
      varintField(2, -1),
      varintField(3, 2n ** 40n),
      bytesField(4, new Uint8Array([0, 255, 7])),
      messageField(5, nested),
      bytesField(6, 'a'),
      bytesField(6, 'b'),
    ];
    const bytes = encode(message);
    const back = decode(bytes);
    assert.equal(back.length, message.length);
    assert.equal(back[0].value, 0n);
    assert.equal(BigInt.asIntN(64, back[1].value as bigint), -1n);
    assert.equal(back[2].value, 2n ** 40n);
    assert.deepEqual([...(back[3].value as Uint8Array)], [0, 255, 7]);
    const inner = decode(back[4].value as Uint8Array);
    assert.equal(first(inner, 1)?.value, 300n);
    assert.equal(firstString(inner, 2), 'héllo');
    assert.deepEqual(strings(back, 6), ['a', 'b']);
    // Encoding what was decoded gives the same bytes: fields the rewrite does not touch survive as they were.
    assert.deepEqual(encode(back), bytes);
  });

  it('re-encodes a real ONNX graph byte for byte', () => {
    const original = readFileSync(join(modelDir('demo-tiny'), 'onnx/model.onnx'));
    assert.ok(Buffer.from(encode(decode(original))).equals(original));
  });

  it('refuses truncated input', () => {
    const bytes = encode([bytesField(1, 'hello')]);
    assert.throws(() => decode(bytes.subarray(0, bytes.length - 2)), /truncated/);
  });
});
