/**
 * Checks a rewritten graph against the export it came from, at load: the same prompt through both sessions, a
 * prefill and two decode steps, and the logits compared at every step. A rewrite that matched the pattern but
 * computes something else (an export whose attention differs in a way the matcher cannot see) is caught here, and
 * the model is served as exported instead.
 */
import * as ort from 'onnxruntime-node';
import type { DecoderSession } from './decoder-session';

export interface RewriteCheck {
  ok: boolean;
  maxDiff: number;
  tolerance: number;
}

const PROMPT_TOKENS = 12;
const DECODE_STEPS = 2;

/**
 * `relativeTolerance` bounds the largest logit difference, relative to the largest logit magnitude (at least 1):
 * about 1e-3 for float32 (the two graphs sum in different orders), more where the graph computes in float16 or
 * quantizes its activations.
 */
export async function checkRewrite(
  fused: DecoderSession,
  exported: DecoderSession,
  vocabSize: number,
  relativeTolerance: number,
): Promise<RewriteCheck> {
  const prompt = Array.from({ length: PROMPT_TOKENS }, (_, i) => BigInt((i * 7919 + 11) % vocabSize));
  const n = prompt.length;
  let maxDiff = 0;
  let scale = 1;
  const compare = (a: Float32Array, b: Float32Array) => {
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
      if (Math.abs(b[i]) > scale) scale = Math.abs(b[i]);
    }
  };

  // The same tokens through both, each with its layout's inputs.
  const prefill = {
    batchSize: 1,
    seqLen: n,
    pastLen: 0,
    inputIds: BigInt64Array.from(prompt),
    positionIds: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
  };
  // The export: a plain growing cache.
  let ref = await exported.forward({ ...prefill, attentionMask: new BigInt64Array(n).fill(1n), past: null });
  // The rewrite: the caller's cache, keys transposed.
  let mine = await fused.forward({
    ...prefill,
    cacheLengths: BigInt64Array.of(0n),
    logitsIndex: BigInt64Array.of(BigInt(n - 1)),
    logitsPerRow: 1,
    past: null,
  });
  let cache = mine.presents.map((t) => ({
    type: t.type as 'float32' | 'float16',
    dims: t.dims,
    data: t.data as Float32Array | Uint16Array,
  }));
  compare(lastRow(mine.logits!, vocabSize), lastRow(ref.logits!, vocabSize));
  let length = n;
  for (let step = 0; step < DECODE_STEPS; step++) {
    const next = BigInt(argmax(lastRow(ref.logits!, vocabSize)));
    const decode = {
      batchSize: 1,
      seqLen: 1,
      pastLen: length,
      inputIds: BigInt64Array.of(next),
      positionIds: BigInt64Array.of(BigInt(length)),
    };
    ref = await exported.forward({
      ...decode,
      attentionMask: new BigInt64Array(length + 1).fill(1n),
      past: ref.presents,
    });
    const past = cache.map((t, i) => {
      const [, heads, columns, headDim] = t.dims;
      // keys are cached [batch, heads, headDim, columns]; values as the graph gives them
      const data = i % 2 === 0 ? transpose(t.data, heads, columns, headDim) : t.data;
      const dims = i % 2 === 0 ? [1, heads, headDim, columns] : [1, heads, columns, headDim];
      return new ort.Tensor(t.type, data, dims);
    });
    mine = await fused.forward({
      ...decode,
      cacheLengths: BigInt64Array.of(BigInt(length)),
      logitsIndex: BigInt64Array.of(0n),
      logitsPerRow: 1,
      past,
    });
    compare(lastRow(mine.logits!, vocabSize), lastRow(ref.logits!, vocabSize));
    cache = cache.map((t, i) => {
      const added = mine.presents[i].data as Float32Array | Uint16Array;
      const [, heads, columns, headDim] = t.dims;
      return {
        type: t.type,
        dims: [1, heads, columns + 1, headDim],
        data: appendColumn(t.data, added, heads, columns, headDim),
      };
    });
    length++;
  }
  const tolerance = relativeTolerance * scale;
  return { ok: maxDiff <= tolerance, maxDiff, tolerance };
}

function lastRow(logits: ort.Tensor, vocab: number): Float32Array {
  const data = logits.data as Float32Array;
  return data.subarray(data.length - vocab);
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** [heads, columns, headDim] → [heads, headDim, columns]. */
function transpose<T extends Float32Array | Uint16Array>(src: T, heads: number, columns: number, headDim: number): T {
  const out = new (src.constructor as new (n: number) => T)(src.length);
  for (let h = 0; h < heads; h++) {
    for (let c = 0; c < columns; c++) {
      for (let d = 0; d < headDim; d++) out[(h * headDim + d) * columns + c] = src[(h * columns + c) * headDim + d];
    }
  }
  return out;
}

/** Appends one column per head: [heads, columns, headDim] + [heads, 1, headDim]. */
function appendColumn<T extends Float32Array | Uint16Array>(
  src: T,
  added: T,
  heads: number,
  columns: number,
  headDim: number,
): T {
  const out = new (src.constructor as new (n: number) => T)(heads * (columns + 1) * headDim);
  for (let h = 0; h < heads; h++) {
    out.set(src.subarray(h * columns * headDim, (h + 1) * columns * headDim), h * (columns + 1) * headDim);
    out.set(added.subarray(h * headDim, (h + 1) * headDim), (h * (columns + 1) + columns) * headDim);
  }
  return out;
}
