/**
 * Held-out perplexity of a loaded model: the text is cut into windows of `window` tokens, each window runs as one
 * prefill that returns the logits of every position (the rewritten graph's `logits_index`), and the mean negative
 * log-likelihood of each next token is exponentiated. The same windows for every variant of a model, so the
 * ratios between variants are exact comparisons.
 */
import type { LoadedModel } from '@switchyard/models';

export interface Perplexity {
  perplexity: number;
  tokens: number;
  windows: number;
}

export async function perplexity(
  model: LoadedModel,
  text: string,
  window = 256,
  maxWindows = Infinity,
): Promise<Perplexity> {
  const session = model.session;
  if (session.signature.layout !== 'ragged')
    throw new Error("perplexity needs the rewritten graph (every position's logits)");
  const ids = model.tokenizer.encode(text);
  const vocab = model.config.vocabSize;
  let nll = 0;
  let counted = 0;
  let windows = 0;
  for (let start = 0; start + 2 <= ids.length && windows < maxWindows; start += window) {
    const chunk = ids.slice(start, start + window);
    const n = chunk.length;
    const out = await session.forward({
      batchSize: 1,
      seqLen: n,
      pastLen: 0,
      inputIds: BigInt64Array.from(chunk, BigInt),
      positionIds: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      cacheLengths: BigInt64Array.of(0n),
      logitsIndex: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      logitsPerRow: n,
      past: null,
    });
    const logits = out.logits!.data as Float32Array;
    const lse = out.logSumExp!;
    for (let t = 0; t + 1 < n; t++) {
      nll += lse[t] - logits[t * vocab + chunk[t + 1]];
      counted++;
    }
    windows++;
  }
  return { perplexity: Math.exp(nll / counted), tokens: counted, windows };
}
