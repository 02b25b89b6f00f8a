/**
 * Chooses one row's next token from its logits: penalties, then greedy choice or sampling through
 * temperature, top-k, top-p and typical-p (in Hugging Face's order), with the chosen token's logprob and the
 * `top_n_tokens` alternatives. Pure over its inputs but for scratch buffers reused across calls, so the hot
 * loop allocates nothing per token beyond its result.
 */
import { expNonPositive, logSumExp } from './fast-exp';
import { MIN_TEMPERATURE } from './parameters';
import { Rng } from './rng';
import type { GenerationParameters } from './types';

/** What a row remembers between steps for penalties and sampling. */
export interface SamplerState {
  /** Null for greedy rows. */
  rng: Rng | null;
  /** Every token of the prompt and the output so far; kept only when a repetition penalty applies. */
  seen: Set<number> | null;
  /** How often each token was generated; kept only when a frequency penalty applies. */
  counts: Map<number, number> | null;
}

/** Bans tokens in a row's logits (a grammar's cursor). */
export interface LogitsMask {
  apply(logits: Float32Array): void;
}

export interface TokenChoice {
  id: number;
  logprob: number;
}

export interface SampleResult extends TokenChoice {
  /** The most likely tokens (after penalties and temperature), best first; empty unless asked for. */
  top: TokenChoice[];
}

export function createSamplerState(params: GenerationParameters, promptIds: readonly number[]): SamplerState {
  return {
    rng: params.doSample ? new Rng(params.seed ?? 0) : null,
    seen: params.repetitionPenalty !== 1 ? new Set(promptIds) : null,
    counts: params.frequencyPenalty !== 0 || params.presencePenalty !== 0 ? new Map() : null,
  };
}

/** A greedy row with no penalty and no top tokens: its token is the logits' argmax, as it stands. */
export function isPlainGreedy(params: GenerationParameters, state: SamplerState): boolean {
  return (
    state.rng === null &&
    state.seen === null &&
    state.counts === null &&
    params.logitBias.length === 0 &&
    params.topNTokens === 0 &&
    params.grammar === null
  );
}

/** Records a chosen token in the row's penalty state. */
export function observeToken(state: SamplerState, id: number): void {
  state.seen?.add(id);
  if (state.counts) state.counts.set(id, (state.counts.get(id) ?? 0) + 1);
}

export class Sampler {
  private readonly probs: Float32Array;
  private readonly sorted: Float32Array;

  constructor(readonly vocabSize: number) {
    this.probs = new Float32Array(vocabSize);
    this.sorted = new Float32Array(vocabSize);
  }

  /**
   * `logits` is one row's slice of the output (length vocabSize); it is modified in place. `mask`, when given,
   * bans the tokens a grammar does not allow, after the penalties and biases.
   */
  sample(
    logits: Float32Array,
    params: GenerationParameters,
    state: SamplerState,
    mask: LogitsMask | null = null,
  ): SampleResult {
    applyPenalties(logits, params, state);
    mask?.apply(logits);
    return state.rng ? this.draw(logits, params, state.rng) : greedy(logits, params.topNTokens);
  }

  private draw(logits: Float32Array, params: GenerationParameters, rng: Rng): SampleResult {
    const n = this.vocabSize;
    const probs = this.probs;
    // validation refuses a smaller temperature; a job from elsewhere must not make 1 / T Infinity (NaN logprobs)
    const invT = 1 / Math.max(params.temperature, MIN_TEMPERATURE);
    let max = -Infinity;
    for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
    let total = 0;
    for (let i = 0; i < n; i++) {
      const p = expNonPositive((logits[i] - max) * invT);
      probs[i] = p;
      total += p;
    }
    let threshold = 0;
    if (params.topK !== null || params.topP !== null) threshold = this.truncationThreshold(total, params);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      if (probs[i] < threshold) probs[i] = 0;
      else kept += probs[i];
    }
    if (params.typicalP !== null) kept = typicalFilter(probs, kept, params.typicalP);

    let u = rng.next() * kept;
    let id = -1;
    for (let i = 0; i < n; i++) {
      const p = probs[i];
      if (p === 0) continue;
      id = i;
      u -= p;
      if (u < 0) break;
    }
    const result: SampleResult = { id, logprob: Math.log(probs[id] / kept), top: [] };
    if (params.topNTokens > 0) {
      // Alternatives are ranked under temperature alone, before truncation, as TGI's top_tokens are.
      const logTotal = Math.log(total);
      for (const t of topIndices(logits, params.topNTokens)) {
        result.top.push({ id: t, logprob: (logits[t] - max) * invT - logTotal });
      }
    }
    return result;
  }

  /**
   * The smallest probability that survives top-k and then top-p. The probabilities are sorted with the typed
   * array's native sort (no comparator), which is fast even over a large vocabulary.
   */
  private truncationThreshold(total: number, params: GenerationParameters): number {
    const sorted = this.sorted;
    sorted.set(this.probs);
    sorted.sort();
    const n = sorted.length;
    const k = Math.min(params.topK ?? n, n);
    let threshold = sorted[n - k];
    if (params.topP !== null) {
      let massK = total;
      if (k < n) {
        massK = 0;
        for (let i = n - 1; i >= n - k; i--) massK += sorted[i];
      }
      const target = params.topP * massK;
      let cum = 0;
      for (let i = n - 1; i >= n - k; i--) {
        cum += sorted[i];
        if (cum >= target) {
          threshold = Math.max(threshold, sorted[i]);
          break;
        }
      }
    }
    return threshold;
  }
}

/** The largest float32. */
const F32_MAX = 3.4028234663852886e38;

function applyPenalties(logits: Float32Array, params: GenerationParameters, state: SamplerState): void {
  if (state.seen) {
    const penalty = params.repetitionPenalty;
    for (const id of state.seen) {
      const v = logits[id];
      // Kept within float32's range: a tiny or huge penalty would make the logit ±Infinity, and a row whose
      // logits are all -Infinity has NaN logprobs.
      logits[id] = v > 0 ? Math.min(v / penalty, F32_MAX) : Math.max(v * penalty, -F32_MAX);
    }
  }
  if (state.counts) {
    const { frequencyPenalty, presencePenalty } = params;
    for (const [id, count] of state.counts) logits[id] -= frequencyPenalty * count + presencePenalty;
  }
  // OpenAI's ends of the range are a ban and a forced choice, whatever the logits' scale
  for (const [id, bias] of params.logitBias) {
    logits[id] = bias <= -100 ? -F32_MAX : bias >= 100 ? F32_MAX : logits[id] + bias;
  }
}

function greedy(logits: Float32Array, topN: number): SampleResult {
  let best = 0;
  let max = logits[0];
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > max) {
      max = logits[i];
      best = i;
    }
  }
  const lse = logSumExp(logits, max);
  const result: SampleResult = { id: best, logprob: max - lse, top: [] };
  if (topN > 0) for (const t of topIndices(logits, topN)) result.top.push({ id: t, logprob: logits[t] - lse });
  return result;
}

/** Indices of the n largest values, largest first (n is small: top_n_tokens is capped). */
export function topIndices(values: Float32Array, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (ids.length === n && v <= values[ids[n - 1]]) continue;
    let j = ids.length < n ? ids.length : n - 1;
    ids[j] = i;
    while (j > 0 && values[ids[j - 1]] < v) {
      ids[j] = ids[j - 1];
      ids[j - 1] = i;
      j--;
    }
  }
  return ids;
}

/**
 * Locally typical sampling (Meister et al.): keep the tokens whose surprisal is closest to the entropy until
 * their mass reaches `typicalP`. Zeroes the rest of `probs` and returns the kept mass. Rarely used, so it
 * sorts with a comparator over the surviving tokens only.
 */
function typicalFilter(probs: Float32Array, mass: number, typicalP: number): number {
  const live: number[] = [];
  let entropy = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] === 0) continue;
    live.push(i);
    const p = probs[i] / mass;
    entropy -= p * Math.log(p);
  }
  const deviation = (i: number) => Math.abs(-Math.log(probs[i] / mass) - entropy);
  live.sort((a, b) => deviation(a) - deviation(b));
  let cum = 0;
  let cut = live.length;
  for (let j = 0; j < live.length; j++) {
    cum += probs[live[j]] / mass;
    if (cum >= typicalP) {
      cut = j + 1;
      break;
    }
  }
  let kept = 0;
  for (let j = 0; j < live.length; j++) {
    if (j < cut) kept += probs[live[j]];
    else probs[live[j]] = 0;
  }
  return kept;
}
