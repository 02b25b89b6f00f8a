/**
 * A running batch's KV cache as the engine sees it, whichever layout the session has (`KvCache`), and the prefill
 * that starts one in the session's layout. The layouts live in padded-kv-batch.ts and ragged-kv-batch.ts; the input
 * buffers their forward calls reuse live in step-buffers.ts.
 */
import type { DecoderSession } from '@switchyard/models';
import { PaddedKvBatch } from './padded-kv-batch';
import { RaggedKvBatch } from './ragged-kv-batch';
import type { StepBuffers } from './step-buffers';

/** The keys and values of one layer, as the engine holds them: float16 caches are held as their bits. */
export type KvArray = Float32Array | Uint16Array;

/** A forward call's logits, as rows of `vocab` values, with the graph's reductions where the session has them. */
export interface StepLogits {
  /** Null when the step left them out (`step(tokens, false)` on a session with `logitsMax`). */
  logits: Float32Array | null;
  /** Per logits row: log Σ exp, the first argmax and the maximum (ragged layout), or null. */
  logSumExp: Float32Array | null;
  argmax: BigInt64Array | null;
  logitsMax: Float32Array | null;
}

/** What the engine needs of a batch's cache, in either layout. */
export interface KvCache {
  readonly size: number;
  /** Columns of the padded shape: the longest row's length. Admission budgets count size × width. */
  readonly width: number;
  /**
   * One decode step: `tokens[r]` is row r's newest token. Logits row r is batch row r's. `wantLogits` false: every
   * row takes the argmax, and the logits may be left out where the session returns `logitsMax`.
   */
  step(tokens: ArrayLike<number>, wantLogits?: boolean): Promise<StepLogits>;
  /** Appends `other`'s rows after this batch's. `other` (of the same layout) is consumed. */
  concat(other: KvCache): void;
  /** Keeps the rows at `keep` (ascending indices). */
  filter(keep: readonly number[]): void;
}

export interface PrefilledCache extends StepLogits {
  batch: KvCache;
  /**
   * The logits row of prompt position `position` of row r, or -1 where it was not computed (a ragged prefill
   * computes only each row's last position unless asked for all).
   */
  logitsRow: (r: number, position: number) => number;
}

export interface PrefillOptions {
  /** Logits for every prompt position (for `decoder_input_details`), not only each row's last. */
  allPositions?: boolean;
  /**
   * False: every row takes the argmax, so the logits may stay in the session where it returns `logitsMax` (as
   * `step(tokens, false)`). Default true. `allPositions` always fetches them.
   */
  wantLogits?: boolean;
}

/** Prefills new rows as a batch of their own, in the session's layout. */
export function prefillCache(
  session: DecoderSession,
  buffers: StepBuffers,
  prompts: readonly number[][],
  options: PrefillOptions = {},
): Promise<PrefilledCache> {
  const allPositions = options.allPositions ?? false;
  return session.signature.layout === 'ragged'
    ? RaggedKvBatch.prefill(session, buffers, prompts, allPositions, allPositions || (options.wantLogits ?? true))
    : PaddedKvBatch.prefill(session, buffers, prompts);
}
