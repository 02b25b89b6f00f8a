/**
 * The limit: the plain `session.run` loop with nothing around it. A fixed batch is prefilled once, then decoded
 * step after step with a greedy argmax per row, the least any server must do per token.
 */
import { performance } from 'node:perf_hooks';
import type { LoadedModel } from '@switchyard/models';
import type * as ort from 'onnxruntime-node';

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
  const batch = prompts.length;
  const length = prompts[0].length;
  const vocab = model.config.vocabSize;
  const session = model.session;
  const started = performance.now();
  let out = await session.forward({
    batchSize: batch,
    seqLen: length,
    pastLen: 0,
    inputIds: BigInt64Array.from(prompts.flat().map(BigInt)),
    attentionMask: new BigInt64Array(batch * length).fill(1n),
    positionIds: BigInt64Array.from({ length: batch * length }, (_, i) => BigInt(i % length)),
    past: null,
  });
  const next = new BigInt64Array(batch);
  const positions = new BigInt64Array(batch);
  argmaxRows(out.logits.data as Float32Array, batch, length, vocab, next);
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
    argmaxRows(out.logits.data as Float32Array, batch, 1, vocab, next);
    past = out.presents;
  }
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
