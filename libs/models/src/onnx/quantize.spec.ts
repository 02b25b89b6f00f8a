import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { OnnxModel } from './onnx-model';
import { OnnxNode } from './onnx-node';
import { OnnxTensor, TensorType } from './onnx-tensor';
import { dequantizeWeight, quantizeMatMuls, quantizeWeight, QuantizeOptions } from './quantize';

/** A deterministic weight matrix with a spread of magnitudes and a skewed block or two. */
function weights(K: number, N: number, seed: number): Float32Array {
  const w = new Float32Array(K * N);
  let x = seed;
  for (let i = 0; i < w.length; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    w[i] = ((x / 2 ** 31) * 2 - 1) * (i % 7 === 0 ? 0.5 : 0.05) + (i % 97 === 0 ? 0.2 : 0);
  }
  return w;
}

function matmul(a: Float32Array, w: Float32Array, M: number, K: number, N: number): Float32Array {
  const out = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let k = 0; k < K; k++) {
      const av = a[m * K + k];
      for (let n = 0; n < N; n++) out[m * N + n] += av * w[k * N + n];
    }
  }
  return out;
}

/** One MatMul y = a · W with W a constant initializer, as an exporter writes it. */
function matmulModel(w: Float32Array, K: number, N: number): OnnxModel {
  return OnnxModel.create({
    nodes: [OnnxNode.make('MatMul', ['a', 'W'], ['y'], 'matmul')],
    initializers: [OnnxTensor.inline('W', TensorType.Float, [K, N], new Uint8Array(w.buffer))],
    inputs: [{ name: 'a', type: TensorType.Float, dims: ['m', K] }],
    outputs: [{ name: 'y', type: TensorType.Float, dims: ['m', N] }],
    opsets: { '': 17 },
  });
}

const KINDS: [string, QuantizeOptions][] = [
  ['q8 asymmetric', { bits: 8, blockSize: 128, symmetric: false, accuracyLevel: 0 }],
  ['q8 symmetric', { bits: 8, blockSize: 32, symmetric: true, accuracyLevel: 0 }],
  ['q4 asymmetric', { bits: 4, blockSize: 32, symmetric: false, accuracyLevel: 0 }],
  ['q4 symmetric', { bits: 4, blockSize: 16, symmetric: true, accuracyLevel: 0 }],
];

describe('weight-only quantization', () => {
  for (const [kind, options] of KINDS) {
    it(`${kind}: codes decode to within half a step of each weight`, () => {
      // K = 200 is not a multiple of the block: the last block is padded
      const K = 200;
      const N = 24;
      const w = weights(K, N, 7);
      const q = quantizeWeight(w, K, N, options);
      const back = dequantizeWeight(q, K, N, options);
      const kBlocks = Math.ceil(K / options.blockSize);
      const scales = new Float32Array(q.scales.buffer, q.scales.byteOffset, N * kBlocks);
      for (let k = 0; k < K; k++) {
        for (let n = 0; n < N; n++) {
          const step = scales[n * kBlocks + Math.floor(k / options.blockSize)];
          const err = Math.abs(back[k * N + n] - w[k * N + n]);
          // symmetric q4 clamps the far end of the range (+8 steps) to +7: a full step there
          const bound = options.symmetric && options.bits === 4 ? Math.abs(step) * 1.0001 : Math.abs(step) * 0.5001;
          assert.ok(err <= bound, `W[${k},${n}]: error ${err} over ${bound}`);
        }
      }
    });

    it(`${kind}: ONNX Runtime's MatMulNBits computes a · dequantized W from the packed codes`, async () => {
      const K = 200;
      const N = 24;
      const M = 3;
      const w = weights(K, N, 11);
      const { model, quantized } = quantizeMatMuls(matmulModel(w, K, N), options);
      assert.equal(quantized, 1);
      assert.deepEqual(
        model.nodes.map((n) => `${n.domain}.${n.opType}`),
        ['com.microsoft.MatMulNBits'],
      );
      assert.ok(!model.initializers.has('W'), 'the float weight is gone');
      const session = await ort.InferenceSession.create(model.toBytes());
      const a = weights(M, K, 3);
      const out = (await session.run({ a: new ort.Tensor('float32', a, [M, K]) })).y.data as Float32Array;
      await session.release();
      const expected = matmul(a, dequantizeWeight(quantizeWeight(w, K, N, options), K, N, options), M, K, N);
      for (let i = 0; i < expected.length; i++) {
        assert.ok(
          Math.abs(out[i] - expected[i]) < 1e-4 * (1 + Math.abs(expected[i])),
          `y[${i}]: ${out[i]} != ${expected[i]}`,
        );
      }
    });
  }

  it('quantizes MatMuls that read the same activation as one, split after', async () => {
    const K = 64;
    const widths = [32, 16, 16];
    const ws = widths.map((N, i) => weights(K, N, 20 + i));
    const model = OnnxModel.create({
      nodes: widths.map((_, i) => OnnxNode.make('MatMul', ['a', `W${i}`], [`y${i}`], `mm${i}`)),
      initializers: widths.map((N, i) =>
        OnnxTensor.inline(`W${i}`, TensorType.Float, [K, N], new Uint8Array(ws[i].buffer)),
      ),
      inputs: [{ name: 'a', type: TensorType.Float, dims: [2, K] }],
      outputs: widths.map((N, i) => ({ name: `y${i}`, type: TensorType.Float, dims: [2, N] })),
      opsets: { '': 17 },
    });
    const options: QuantizeOptions = { bits: 8, blockSize: 32, symmetric: false, accuracyLevel: 0 };
    const result = quantizeMatMuls(model, options);
    assert.equal(result.quantized, 3);
    assert.deepEqual(
      result.model.nodes.map((n) => n.opType),
      ['MatMulNBits', 'Split'],
    );
    const session = await ort.InferenceSession.create(result.model.toBytes());
    const a = weights(2, K, 5);
    const out = await session.run({ a: new ort.Tensor('float32', a, [2, K]) });
    await session.release();
    widths.forEach((N, i) => {
      const expected = matmul(a, dequantizeWeight(quantizeWeight(ws[i], K, N, options), K, N, options), 2, K, N);
      const got = out[`y${i}`].data as Float32Array;
      for (let j = 0; j < expected.length; j++) assert.ok(Math.abs(got[j] - expected[j]) < 1e-4, `y${i}[${j}]`);
    });
  });

  it('gives the language-model head its own bits and block', () => {
    const K = 64;
    const model = OnnxModel.create({
      nodes: [
        OnnxNode.make('MatMul', ['a', 'W'], ['h'], 'proj'),
        OnnxNode.make('MatMul', ['h', 'H'], ['logits'], 'head'),
      ],
      initializers: [
        OnnxTensor.inline('W', TensorType.Float, [K, K], new Uint8Array(weights(K, K, 1).buffer)),
        OnnxTensor.inline('H', TensorType.Float, [K, 96], new Uint8Array(weights(K, 96, 2).buffer)),
      ],
      inputs: [{ name: 'a', type: TensorType.Float, dims: [1, K] }],
      outputs: [{ name: 'logits', type: TensorType.Float, dims: [1, 96] }],
      opsets: { '': 17 },
    });
    const { model: out } = quantizeMatMuls(model, {
      bits: 4,
      blockSize: 32,
      symmetric: false,
      accuracyLevel: 4,
      head: { bits: 8, blockSize: 64 },
    });
    const attrs = out.nodes.map((n) => [n.outputs[0], n.intAttribute('bits'), n.intAttribute('block_size')]);
    assert.deepEqual(attrs, [
      ['h', 4, 32],
      ['logits', 8, 64],
    ]);
  });

  it('refuses block sizes MatMulNBits cannot take', () => {
    const model = matmulModel(weights(32, 8, 1), 32, 8);
    for (const blockSize of [24, 8, 512]) {
      assert.throws(
        () => quantizeMatMuls(model, { bits: 4, blockSize, symmetric: false, accuracyLevel: 4 }),
        /not 16, 32, 64, 128 or 256/,
      );
    }
  });
});
