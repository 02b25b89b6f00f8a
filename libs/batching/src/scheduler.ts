/**
 * The waiting queue and the admission decision, TGI's rules: new requests join the running batch only within
 * the token budget (counted on the padded batch, including the tokens every row may still produce), the
 * prefill budget and the batch size; and a running batch is paused for a prefill only when enough requests
 * wait (`waitingServedRatio`) or they have waited `maxWaitingTokens` steps. Prefills that run back to back, with no
 * decode step between them, share one prefill budget (the engine passes what is left), so the running rows never
 * wait for more than one budget's worth of prefill; and the ratio counts only the rows that were decoding before
 * them, so that the stragglers of a wave of arrivals join its last prefill instead of waiting `maxWaitingTokens`
 * steps behind rows that have not decoded yet. No I/O, no tensors: plain numbers.
 */

export interface SchedulerConfig {
  /** Bound on rows × padded width, counting the new tokens each row may still produce. */
  maxBatchTotalTokens: number;
  /** Bound on rows × padded prompt length of one prefill. */
  maxBatchPrefillTokens: number;
  maxBatchSize: number;
  /** Waiting requests needed, as a fraction of the running batch, to pause it for a prefill. */
  waitingServedRatio: number;
  /** Decode steps after which waiting requests are prefilled whatever their number. */
  maxWaitingTokens: number;
}

/**
 * `maxBatchTotalTokens` 8192: on a CPU a decode step costs about the same per row whatever the batch (the weights
 * stay in cache; each row adds its own compute), so rows beyond a few dozen add latency and little throughput.
 * Measured on demo-small (bench/results): continuous batching with 8192 keeps its p99 latency under static
 * batching's on a mixed workload that overloads both, where 65536 let the batch grow to 64 rows and lost that. A
 * request longer than the budget is refused by name (`fitsAlone`): raise it for long-context models, and on a GPU to
 * what the KV memory allows, as TGI does.
 */
export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  maxBatchTotalTokens: 8192,
  maxBatchPrefillTokens: 4096,
  maxBatchSize: 64,
  waitingServedRatio: 0.3,
  maxWaitingTokens: 20,
};

export interface QueueEntry {
  inputLength: number;
  maxNewTokens: number;
  /** True once the client has gone: the entry is dropped before it costs compute. */
  readonly cancelled: boolean;
}

/** The running batch as admission sees it. */
export interface BatchShape {
  size: number;
  /** Columns in the KV cache now. */
  width: number;
  /** The most new tokens any row may still produce. */
  maxRemaining: number;
}

export const EMPTY_BATCH: BatchShape = { size: 0, width: 0, maxRemaining: 0 };

/** The padded token count a batch may reach if no row leaves: every row padded to the widest final row. */
export function projectedTokens(shape: BatchShape): number {
  return shape.size * (shape.width + shape.maxRemaining);
}

export interface Admission<E> {
  admitted: E[];
  /** Cancelled entries taken off the queue on the way. */
  dropped: E[];
  /** The batch shape once the admitted rows are prefilled and joined. */
  shape: BatchShape;
  /** The admitted rows' prefill, padded: rows × the longest prompt among them. */
  prefillTokens: number;
}

export class Scheduler<E extends QueueEntry> {
  private queue: E[] = [];
  private stepsSinceAdmission = 0;

  constructor(readonly config: SchedulerConfig) {}

  get waiting(): number {
    return this.queue.length;
  }

  /** Whether a request could ever run: alone in an empty batch, within both budgets. */
  fitsAlone(entry: Pick<QueueEntry, 'inputLength' | 'maxNewTokens'>): string | null {
    const { maxBatchPrefillTokens, maxBatchTotalTokens } = this.config;
    if (entry.inputLength > maxBatchPrefillTokens) {
      return `the prompt has ${entry.inputLength} tokens, over max_batch_prefill_tokens (${maxBatchPrefillTokens})`;
    }
    if (entry.inputLength + entry.maxNewTokens - 1 > maxBatchTotalTokens) {
      return `the prompt (${entry.inputLength} tokens) plus max_new_tokens (${entry.maxNewTokens}) exceeds max_batch_total_tokens (${maxBatchTotalTokens})`;
    }
    return null;
  }

  enqueue(entry: E): void {
    this.queue.push(entry);
  }

  /** Takes cancelled entries off the queue now, without waiting for the next admission. */
  dropCancelled(): E[] {
    const dropped = this.queue.filter((e) => e.cancelled);
    if (dropped.length > 0) this.queue = this.queue.filter((e) => !e.cancelled);
    return dropped;
  }

  /** Records a decode step that admitted nothing (for `maxWaitingTokens`). */
  noteDecodeStep(): void {
    this.stepsSinceAdmission++;
  }

  /**
   * Decides which waiting entries join the running batch now, in arrival order. When the engine has already
   * prefilled since its last decode step, `since` says what is left of max_batch_prefill_tokens and how many rows
   * that decode step left running: rows prefilled since then have not started decoding, so a further prefill does
   * not count them among the rows it pauses (`waitingServedRatio`).
   */
  nextBatch(running: BatchShape, since?: { prefillBudget: number; decodingRows: number }): Admission<E> {
    const dropped = this.dropCancelled();
    const { maxBatchTotalTokens, maxBatchSize, waitingServedRatio, maxWaitingTokens } = this.config;
    const prefillBudget = since?.prefillBudget ?? this.config.maxBatchPrefillTokens;
    const paused = Math.min(running.size, since?.decodingRows ?? running.size);
    const minSize =
      paused === 0 || this.stepsSinceAdmission >= maxWaitingTokens
        ? 1
        : Math.max(1, Math.floor(paused * waitingServedRatio));

    const admitted: E[] = [];
    let prefillWidth = 0;
    let newRemaining = 0;
    let shape = running;
    for (const entry of this.queue) {
      if (running.size + admitted.length + 1 > maxBatchSize) break;
      const width = Math.max(prefillWidth, entry.inputLength);
      if ((admitted.length + 1) * width > prefillBudget) break;
      // After its prefill a row holds its prompt and has produced one token.
      const remaining = Math.max(newRemaining, entry.maxNewTokens - 1);
      const next: BatchShape = {
        size: running.size + admitted.length + 1,
        width: Math.max(running.width, width),
        maxRemaining: Math.max(running.maxRemaining, remaining),
      };
      if (projectedTokens(next) > maxBatchTotalTokens) break;
      admitted.push(entry);
      prefillWidth = width;
      newRemaining = remaining;
      shape = next;
    }
    if (admitted.length < minSize) return { admitted: [], dropped, shape: running, prefillTokens: 0 };
    this.queue = this.queue.slice(admitted.length);
    this.stepsSinceAdmission = 0;
    return { admitted, dropped, shape, prefillTokens: admitted.length * prefillWidth };
  }
}
