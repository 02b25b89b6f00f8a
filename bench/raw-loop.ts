/**
 * The limit: the plain `session.run` loop with nothing around it. A fixed batch is prefilled once, then decoded
 * step after step with a greedy argmax per row, the least any server must do per token. It speaks the session's
 * layout: the export's (the presents become the next past) or the fused graph's (the loop keeps the cache, grown
 * in the same 32-column steps as the engine's, writes each step's new keys and values into it, and takes the
 * graph's argmax).
 */
import { performance } from 'node:perf_hooks';
import type { LoadedModel } from '@switchyard/models';
import * as ort from 'onnxruntime-node';

export interface RawLoopResult {
  batch: number;
  promptLength: number;
  newTokens: number;
  seconds: number;
  tokensPerSecond: number;
  msPerStep: number;
}

function argmaxRows(logits: Float32Array, rows: number, seq: number, vocab: number, out: BigInt64Array): void {
  for (let r = 0; r < rows; r++) {
    const base = (r * seq + seq - 1) * vocab;
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[base + v] > logits[base + best]) best = v;
    out[r] = BigInt(best);
  }
}

/** Prefill `prompts` (all of one length) and decode until each row has `newTokens` tokens. */
export async function rawLoop(model: LoadedModel, prompts: number[][], newTokens: number): Promise<RawLoopResult> {
  return model.session.signature.layout === 'ragged'
    ? raggedRawLoop(model, prompts, newTokens)
    : paddedRawLoop(model, prompts, newTokens);
}

/** The prefill's inputs in either layout: every row's prompt from position 0. */
function prefillInputs(prompts: number[][]) {
  const length = prompts[0].length;
  return {
    batchSize: prompts.length,
    seqLen: length,
    pastLen: 0,
    inputIds: BigInt64Array.from(prompts.flat().map(BigInt)),
    positionIds: BigInt64Array.from({ length: prompts.length * length }, (_, i) => BigInt(i % length)),
  };
}

function result(
  batch: number,
  length: number,
  newTokens: number,
  started: number,
  decodeStarted: number,
): RawLoopResult {
  const ended = performance.now();
  const seconds = (ended - started) / 1000;
  return {
    batch,
    promptLength: length,
    newTokens,
    seconds,
    tokensPerSecond: (batch * newTokens) / seconds,
    msPerStep: newTokens > 1 ? (ended - decodeStarted) / (newTokens - 1) : NaN,
  };
}

async function raggedRawLoop(model: LoadedModel, prompts: number[][], newTokens: number): Promise<RawLoopResult> {
  const batch = prompts.length;
  const length = prompts[0].length;
  const { numKvHeads: heads, headDim } = model.config;
  const session = model.session;
  const started = performance.now();
  const out = await session.forward({
    ...prefillInputs(prompts),
    cacheLengths: new BigInt64Array(batch),
    logitsIndex: BigInt64Array.from({ length: batch }, (_, r) => BigInt(r * length + length - 1)),
    logitsPerRow: 1,
    past: null,
  });
  // The rewritten graph returns each row's argmax: the loop takes it, as the engine does for greedy rows.
  const next = BigInt64Array.from(out.argmax!);
  let columns = Math.ceil((length + 1) / 32) * 32;
  const alloc = (cols: number) => out.presents.map(() => new Float32Array(batch * heads * cols * headDim));
  let cache = alloc(columns);
  // New keys and values arrive [rows, heads, seq, headDim]; keys are cached transposed, [rows, heads, headDim, cols].
  const write = (src: Float32Array[], seq: number, at: number) => {
    for (let i = 0; i < cache.length; i++) {
      const dest = cache[i];
      for (let rh = 0; rh < batch * heads; rh++) {
        for (let t = 0; t < seq; t++) {
          for (let d = 0; d < headDim; d++) {
            const v = src[i][(rh * seq + t) * headDim + d];
            if (i % 2 === 0) dest[(rh * headDim + d) * columns + at + t] = v;
            else dest[(rh * columns + at + t) * headDim + d] = v;
          }
        }
      }
    }
  };
  write(
    out.presents.map((t) => t.data as Float32Array),
    length,
    0,
  );
  const positions = new BigInt64Array(batch);
  const lengths = new BigInt64Array(batch);
  const rowsIndex = BigInt64Array.from({ length: batch }, (_, r) => BigInt(r));
  const decodeStarted = performance.now();
  for (let step = 1; step < newTokens; step++) {
    const width = length + step - 1;
    if (width + 1 > columns) {
      const old = cache;
      const oldColumns = columns;
      columns += 32;
      cache = alloc(columns);
      for (let i = 0; i < cache.length; i++) {
        const rowsOf = i % 2 === 0 ? batch * heads * headDim : batch * heads;
        const block = i % 2 === 0 ? 1 : headDim;
        for (let row = 0; row < rowsOf; row++) {
          cache[i].set(
            old[i].subarray(row * oldColumns * block, (row * oldColumns + width) * block),
            row * columns * block,
          );
        }
      }
    }
    positions.fill(BigInt(width));
    lengths.fill(BigInt(width));
    const o = await session.forward({
      batchSize: batch,
      seqLen: 1,
      pastLen: columns,
      inputIds: next,
      positionIds: positions,
      cacheLengths: lengths,
      logitsIndex: rowsIndex,
      logitsPerRow: 1,
      skipLogits: true,
      past: cache.map(
        (c, i) =>
          new ort.Tensor(
            'float32',
            c,
            i % 2 === 0 ? [batch, heads, headDim, columns] : [batch, heads, columns, headDim],
          ),
      ),
    });
    next.set(o.argmax!);
    write(
      o.presents.map((t) => t.data as Float32Array),
      1,
      width,
    );
  }
  return result(batch, length, newTokens, started, decodeStarted);
}

async function paddedRawLoop(model: LoadedModel, prompts: number[][], newTokens: number): Promise<RawLoopResult> {
  const batch = prompts.length;
  const length = prompts[0].length;
  const vocab = model.config.vocabSize;
  const session = model.session;
  const started = performance.now();
  let out = await session.forward({
    ...prefillInputs(prompts),
    attentionMask: new BigInt64Array(batch * length).fill(1n),
    past: null,
  });
  const next = new BigInt64Array(batch);
  const positions = new BigInt64Array(batch);
  argmaxRows(out.logits!.data as Float32Array, batch, length, vocab, next);
  let past: ort.Tensor[] = out.presents;
  const decodeStarted = performance.now();
  for (let step = 1; step < newTokens; step++) {
    const width = length + step - 1;
    positions.fill(BigInt(width));
    out = await session.forward({
      batchSize: batch,
      seqLen: 1,
      pastLen: width,
      inputIds: next,
      attentionMask: new BigInt64Array(batch * (width + 1)).fill(1n),
      positionIds: positions,
      past,
    });
    argmaxRows(out.logits!.data as Float32Array, batch, 1, vocab, next);
    past = out.presents;
  }
  return result(batch, length, newTokens, started, decodeStarted);
}
