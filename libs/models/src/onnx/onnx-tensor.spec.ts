import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { floatToHalf } from './float16';
import { floatsView, halfsView, OnnxTensor, scalarOfTensor, tensorFromProto, TensorType } from './onnx-tensor';
import { bytesField, Message, messageField, varintField } from './protobuf';

// TensorProto field numbers (onnx.proto)
const DIMS = 1;
const TYPE = 2;
const FLOAT_DATA = 4;
const INT32_DATA = 5;
const INT64_DATA = 7;
const NAME = 8;
const EXTERNAL = 13;
const LOCATION = 14;

function proto(name: string, type: TensorType, dims: number[], data: Message): Message {
  return [...dims.map((d) => varintField(DIMS, d)), varintField(TYPE, type), bytesField(NAME, name), ...data];
}

describe('ONNX tensor', () => {
  it('reads inline data from the typed repeated fields as raw little-endian bytes', () => {
    const f = tensorFromProto(
      proto('f', TensorType.Float, [2], [bytesField(FLOAT_DATA, new Uint8Array(Float32Array.of(1.5, -2).buffer))]),
      '.',
    );
    assert.deepEqual([...floatsView(f.read())], [1.5, -2]);
    const i64 = tensorFromProto(
      proto(
        'i',
        TensorType.Int64,
        [3],
        [varintField(INT64_DATA, 7), varintField(INT64_DATA, -1), varintField(INT64_DATA, 2 ** 40)],
      ),
      '.',
    );
    assert.deepEqual([...new BigInt64Array(i64.read().slice().buffer)], [7n, -1n, 2n ** 40n]);
    const half = tensorFromProto(proto('h', TensorType.Float16, [1], [varintField(INT32_DATA, floatToHalf(0.5))]), '.');
    assert.deepEqual([...halfsView(half.read())], [floatToHalf(0.5)]);
    assert.equal(f.byteLength, 8);
    assert.equal(f.elements, 2);
  });

  it('finds external data relative to the model directory, and refuses a location outside it', () => {
    const external = (location: string) =>
      proto(
        'w',
        TensorType.Float,
        [4, 2],
        [
          ...[
            ['location', location],
            ['offset', '128'],
          ].map(([k, v]) => messageField(EXTERNAL, [bytesField(1, k), bytesField(2, v)])),
          varintField(LOCATION, 1),
        ],
      );
    const w = tensorFromProto(external('model.onnx_data'), '/models/m/onnx');
    assert.deepEqual(w.source, { kind: 'external', file: '/models/m/onnx/model.onnx_data', offset: 128, length: 32 });
    assert.throws(() => tensorFromProto(external('../other'), '/models/m/onnx'), /outside the model directory/);
    assert.throws(() => tensorFromProto(external('/etc/passwd'), '/models/m/onnx'), /outside the model directory/);
  });

  it('reads float scalars (float32, or float16 raw or in int32_data), and nothing else', () => {
    const raw32 = OnnxTensor.inline('s', TensorType.Float, [], new Uint8Array(Float32Array.of(0.25).buffer)).proto!;
    assert.equal(scalarOfTensor(raw32), 0.25);
    const raw16 = OnnxTensor.inline(
      's',
      TensorType.Float16,
      [1],
      new Uint8Array(Uint16Array.of(floatToHalf(-3)).buffer),
    ).proto!;
    assert.equal(scalarOfTensor(raw16), -3);
    assert.equal(scalarOfTensor(proto('s', TensorType.Float16, [], [varintField(INT32_DATA, floatToHalf(2))])), 2);
    const vector = OnnxTensor.inline('v', TensorType.Float, [2], new Uint8Array(8)).proto!;
    assert.equal(scalarOfTensor(vector), undefined);
    const int = OnnxTensor.inline('i', TensorType.Int64, [], new Uint8Array(8)).proto!;
    assert.equal(scalarOfTensor(int), undefined);
  });

  it('views aligned bytes in place and copies unaligned ones', () => {
    const bytes = new Uint8Array(9);
    assert.equal(floatsView(bytes.subarray(0, 8)).buffer, bytes.buffer);
    assert.notEqual(floatsView(bytes.subarray(1, 9)).buffer, bytes.buffer);
    assert.equal(halfsView(bytes.subarray(2, 6)).buffer, bytes.buffer);
  });
});
