/**
 * Weight-only quantization of a graph's MatMuls, written as ONNX Runtime's `com.microsoft.MatMulNBits`: every
 * MatMul whose second input is a constant float matrix [K, N] becomes a MatMulNBits over 8- or 4-bit codes in
 * blocks of `blockSize` along K, each block with its own scale (and, when asymmetric, its own zero point). The
 * activations stay float; with `accuracyLevel` 4 ONNX Runtime quantizes them to int8 per block inside the kernel
 * and multiplies in integers (AVX-512 VNNI or AMX where the CPU has them), which is where the speed comes from: a
 * decode step on a CPU is bound by reading the weights, and int8 reads a quarter of float32's bytes.
 *
 * The codes are computed when the model is saved (`OnnxTensor.computed`), one weight at a time, so quantizing a
 * model needs about the memory of its largest matrix. The embedding (a Gather) is left as it is.
 */
import { halfsToFloats, floatsToHalfs } from './float16';
import { OnnxModel } from './onnx-model';
import { intAttr, intsAttr, MS_DOMAIN, OnnxNode } from './onnx-node';
import { floatsView, halfsView, OnnxTensor, TensorType } from './onnx-tensor';

export interface QuantizeOptions {
  bits: 4 | 8;
  /** Weights per block along K: a power of two, at least 16. */
  blockSize: number;
  /** Scale only (zero point 2^(bits-1)), or scale and zero point per block. */
  symmetric: boolean;
  /** MatMulNBits' `accuracy_level`: 4 computes in int8 (fastest on CPUs), 0 or 1 in float32. */
  accuracyLevel: number;
  /**
   * The language-model head's own bits and block, where they differ (the MatMul that produces the graph's `logits`):
   * a small share of a real model's weights that every token's distribution goes through.
   */
  head?: { bits: 4 | 8; blockSize: number };
}

export interface QuantizeResult {
  model: OnnxModel;
  /** MatMuls rewritten. */
  quantized: number;
  /** Float weight bytes replaced, and the bytes of their codes, scales and zero points. */
  bytesBefore: number;
  bytesAfter: number;
}

/**
 * Rewrites every MatMul with a constant float [K, N] weight; `source` is left unchanged. MatMuls that read the same
 * activation (a layer's query, key and value projections; its gate and up projections) become one MatMulNBits over
 * their weights side by side, followed by a Split: the activation is quantized once instead of once per
 * projection, and one larger product keeps both cores busy where the key and value ones alone are too small to.
 */
export function quantizeMatMuls(source: OnnxModel, options: QuantizeOptions): QuantizeResult {
  for (const { bits, blockSize } of [options, options.head ?? options]) {
    if (bits !== 4 && bits !== 8) throw new Error(`cannot quantize to ${String(bits)} bits (4 or 8)`);
    // ONNX Runtime's MatMulNBits takes 16, 32, 64, 128 or 256
    if (blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
      throw new Error(`block size ${blockSize} is not 16, 32, 64, 128 or 256`);
    }
  }
  const model = source.clone();
  // the head: the MatMul whose output is the logits, directly or through a Cast
  const logitsProducer = model.nodes.find((n) => n.outputs[0] === 'logits');
  const headOutput = logitsProducer?.opType === 'Cast' ? logitsProducer.inputs[0] : 'logits';
  const uses = new Map<string, number>();
  for (const node of model.nodes) for (const input of node.inputs) uses.set(input, (uses.get(input) ?? 0) + 1);
  const weightOf = (node: OnnxNode): OnnxTensor | null => {
    if (node.opType !== 'MatMul' || node.domain !== '') return null;
    const w = model.initializers.get(node.inputs[1]);
    if (!w || w.dims.length !== 2 || (w.type !== TensorType.Float && w.type !== TensorType.Float16)) return null;
    return w;
  };
  // MatMuls that read the same activation with weights of the same depth and type are quantized as one.
  const groups = new Map<string, OnnxNode[]>();
  for (const node of model.nodes) {
    const w = weightOf(node);
    if (!w) continue;
    const key = `${node.inputs[0]}\0${w.dims[0]}\0${w.type}`;
    const group = groups.get(key);
    if (group) group.push(node);
    else groups.set(key, [node]);
  }
  const groupOf = new Map<OnnxNode, OnnxNode[]>();
  for (const group of groups.values()) for (const node of group) groupOf.set(node, group);
  const splitAsInput = model.opsetVersion() >= 13;
  let quantized = 0;
  let bytesBefore = 0;
  let bytesAfter = 0;
  const nodes: OnnxNode[] = [];
  for (const node of model.nodes) {
    const group = groupOf.get(node);
    if (!group) {
      nodes.push(node);
      continue;
    }
    if (group[0] !== node) continue; // emitted with the group's first member
    const settings =
      options.head && group.length === 1 && node.outputs[0] === headOutput ? { ...options, ...options.head } : options;
    const { bits, blockSize } = settings;
    const weights = group.map((n) => weightOf(n)!);
    const K = weights[0].dims[0];
    const widths = weights.map((w) => w.dims[1]);
    const N = widths.reduce((a, b) => a + b, 0);
    const kBlocks = Math.ceil(K / blockSize);
    const blob = (blockSize * bits) / 8;
    const scaleType = weights[0].type;
    const base = group.length === 1 ? weights[0].name : `${weights[0].name}_merged${group.length}`;
    const block = new BlockQuantizer(weights, settings);
    const codes = OnnxTensor.computed(
      `${base}_Q${bits}`,
      TensorType.Uint8,
      [N, kBlocks, blob],
      N * kBlocks * blob,
      () => block.result().codes,
    );
    const scaleBytes = N * kBlocks * (scaleType === TensorType.Float ? 4 : 2);
    const scales = OnnxTensor.computed(
      `${base}_scales`,
      scaleType,
      [N * kBlocks],
      scaleBytes,
      () => block.result().scales,
    );
    const inputs = [node.inputs[0], codes.name, scales.name];
    model.initializers.set(codes.name, codes);
    model.initializers.set(scales.name, scales);
    bytesAfter += codes.byteLength + scales.byteLength;
    if (!settings.symmetric) {
      const zpLength = N * Math.ceil((kBlocks * bits) / 8);
      const zeroPoints = OnnxTensor.computed(
        `${base}_zp`,
        TensorType.Uint8,
        [zpLength],
        zpLength,
        () => block.result().zeroPoints!,
      );
      model.initializers.set(zeroPoints.name, zeroPoints);
      inputs.push(zeroPoints.name);
      bytesAfter += zpLength;
    }
    for (const w of weights) {
      bytesBefore += w.byteLength;
      if (uses.get(w.name) === 1) model.initializers.delete(w.name);
    }
    quantized += group.length;
    const name = `${node.name || node.outputs[0]}_Q${bits}`;
    const output = group.length === 1 ? node.outputs[0] : `${name}_output`;
    nodes.push(
      OnnxNode.make(
        'MatMulNBits',
        inputs,
        [output],
        name,
        [
          intAttr('K', K),
          intAttr('N', N),
          intAttr('bits', bits),
          intAttr('block_size', blockSize),
          intAttr('accuracy_level', settings.accuracyLevel),
        ],
        MS_DOMAIN,
      ),
    );
    if (group.length > 1) {
      const outputs = group.map((n) => n.outputs[0]);
      if (splitAsInput) {
        const sizes = OnnxTensor.inline(
          `${name}_split`,
          TensorType.Int64,
          [widths.length],
          new Uint8Array(BigInt64Array.from(widths.map(BigInt)).buffer),
        );
        model.initializers.set(sizes.name, sizes);
        nodes.push(OnnxNode.make('Split', [output, sizes.name], outputs, `${name}_split`, [intAttr('axis', -1)]));
      } else {
        nodes.push(
          OnnxNode.make('Split', [output], outputs, `${name}_split`, [intAttr('axis', -1), intsAttr('split', widths)]),
        );
      }
    }
  }
  model.nodes = nodes;
  if (quantized > 0) model.importOpset(MS_DOMAIN, 1);
  return { model, quantized, bytesBefore, bytesAfter };
}

interface Quantized {
  codes: Uint8Array;
  scales: Uint8Array;
  zeroPoints: Uint8Array | null;
}

/**
 * The codes, scales and zero points of a group of weights side by side along N, computed on first use (the saver
 * asks for each of the three in turn) and dropped after the last, so one group's float copy is in memory at a time.
 * MatMulNBits' layout is N-major, so side by side is each weight's arrays one after the other.
 */
class BlockQuantizer {
  private cached: Quantized | null = null;
  private taken = 0;

  constructor(
    private readonly weights: OnnxTensor[],
    private readonly options: QuantizeOptions,
  ) {}

  result(): Quantized {
    this.cached ??= concatenate(
      this.weights.map((w) => quantizeWeight(readFloats(w), w.dims[0], w.dims[1], this.options, w.type)),
    );
    const out = this.cached;
    if (++this.taken === (this.options.symmetric ? 2 : 3)) this.cached = null;
    return out;
  }
}

function concatenate(parts: Quantized[]): Quantized {
  if (parts.length === 1) return parts[0];
  const join = (arrays: Uint8Array[]) => {
    const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
    let at = 0;
    for (const a of arrays) {
      out.set(a, at);
      at += a.length;
    }
    return out;
  };
  return {
    codes: join(parts.map((p) => p.codes)),
    scales: join(parts.map((p) => p.scales)),
    zeroPoints: parts[0].zeroPoints ? join(parts.map((p) => p.zeroPoints!)) : null,
  };
}

function readFloats(tensor: OnnxTensor): Float32Array {
  const bytes = tensor.read();
  return tensor.type === TensorType.Float ? floatsView(bytes) : halfsToFloats(halfsView(bytes));
}

/**
 * Quantizes W [K, N] (row-major) column by column in blocks along K, into MatMulNBits' layout: codes
 * [N, kBlocks, blockSize × bits / 8] packed low bits first, scales [N × kBlocks], and zero points packed the same
 * way as the codes ([N × ceil(kBlocks × bits / 8)]). A block's rows are read together, so W is read in order.
 */
export function quantizeWeight(
  w: Float32Array,
  K: number,
  N: number,
  options: QuantizeOptions,
  scaleType: number = TensorType.Float,
): Quantized {
  const { bits, blockSize, symmetric } = options;
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const levels = (1 << bits) - 1;
  const middle = 1 << (bits - 1);
  const codes = new Uint8Array(N * kBlocks * blob);
  const scales = new Float32Array(N * kBlocks);
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const zeroPoints = symmetric ? null : new Uint8Array(N * zpRow);
  const lo = new Float32Array(N);
  const hi = new Float32Array(N);
  const inverse = new Float32Array(N);
  const zero = new Int32Array(N);
  for (let b = 0; b < kBlocks; b++) {
    const k0 = b * blockSize;
    const k1 = Math.min(K, k0 + blockSize);
    lo.fill(0);
    hi.fill(0);
    for (let k = k0; k < k1; k++) {
      const row = k * N;
      for (let n = 0; n < N; n++) {
        const v = w[row + n];
        if (v < lo[n]) lo[n] = v;
        if (v > hi[n]) hi[n] = v;
      }
    }
    for (let n = 0; n < N; n++) {
      let scale: number;
      let zp: number;
      if (symmetric) {
        // As llama.cpp's Q4_0/Q8_0: the largest magnitude maps to the end of the range, with its sign.
        const extreme = -lo[n] > hi[n] ? lo[n] : hi[n];
        scale = bits === 4 ? extreme / -middle : Math.abs(extreme) / (middle - 1);
        zp = middle;
      } else {
        scale = (hi[n] - lo[n]) / levels;
        zp = scale === 0 ? middle : Math.min(levels, Math.max(0, Math.round(-lo[n] / scale)));
      }
      // the scale is stored as float16 where the graph computes in it: quantize against the stored value
      if (scaleType === TensorType.Float16) scale = roundToHalf(scale);
      else scale = Math.fround(scale);
      scales[n * kBlocks + b] = scale;
      inverse[n] = scale === 0 ? 0 : 1 / scale;
      zero[n] = zp;
      if (zeroPoints) {
        const at = n * zpRow + ((b * bits) >> 3);
        zeroPoints[at] |= bits === 8 ? zp : zp << ((b & 1) * 4);
      }
    }
    for (let k = k0; k < k1; k++) {
      const row = k * N;
      const j = k - k0;
      const byteInBlob = bits === 8 ? j : j >> 1;
      const shift = bits === 8 ? 0 : (j & 1) * 4;
      for (let n = 0; n < N; n++) {
        let q = Math.round(w[row + n] * inverse[n]) + zero[n];
        if (q < 0) q = 0;
        else if (q > levels) q = levels;
        codes[(n * kBlocks + b) * blob + byteInBlob] |= q << shift;
      }
    }
    // rows past K (a partial last block) are padding: they hold the zero point, which decodes to 0
    for (let k = k1; k < k0 + blockSize; k++) {
      const j = k - k0;
      const byteInBlob = bits === 8 ? j : j >> 1;
      const shift = bits === 8 ? 0 : (j & 1) * 4;
      for (let n = 0; n < N; n++) codes[(n * kBlocks + b) * blob + byteInBlob] |= zero[n] << shift;
    }
  }
  const scaleBytes =
    scaleType === TensorType.Float16 ? new Uint8Array(floatsToHalfs(scales).buffer) : new Uint8Array(scales.buffer);
  return { codes, scales: scaleBytes, zeroPoints };
}

const half = new Uint16Array(1);
function roundToHalf(value: number): number {
  half[0] = floatsToHalfs(Float32Array.of(value))[0];
  return halfsToFloats(half)[0];
}

/** Decodes MatMulNBits' codes back to W [K, N] (row-major): the reference for tests and error measurements. */
export function dequantizeWeight(
  q: Quantized,
  K: number,
  N: number,
  options: QuantizeOptions,
  scaleType: number = TensorType.Float,
): Float32Array {
  const { bits, blockSize } = options;
  const kBlocks = Math.ceil(K / blockSize);
  const blob = (blockSize * bits) / 8;
  const zpRow = Math.ceil((kBlocks * bits) / 8);
  const scales =
    scaleType === TensorType.Float16
      ? halfsToFloats(new Uint16Array(q.scales.buffer, q.scales.byteOffset, N * kBlocks))
      : new Float32Array(q.scales.buffer, q.scales.byteOffset, N * kBlocks);
  const w = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < kBlocks; b++) {
      const scale = scales[n * kBlocks + b];
      let zp = 1 << (bits - 1);
      if (q.zeroPoints) {
        const byte = q.zeroPoints[n * zpRow + ((b * bits) >> 3)];
        zp = bits === 8 ? byte : (byte >> ((b & 1) * 4)) & 0xf;
      }
      for (let j = 0; j < blockSize && b * blockSize + j < K; j++) {
        const byte = q.codes[(n * kBlocks + b) * blob + (bits === 8 ? j : j >> 1)];
        const code = bits === 8 ? byte : (byte >> ((j & 1) * 4)) & 0xf;
        w[(b * blockSize + j) * N + n] = (code - zp) * scale;
      }
    }
  }
  return w;
}
