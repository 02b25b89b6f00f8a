/**
 * The padded layout (the export as it is): TGI's CausalLMBatch design. Per layer a [batch, kvHeads, width,
 * headDim] tensor, rows left-padded to a common width, with each row's padding count; the presents a step returns
 * become the next step's past as they are. Data is copied when rows join (concat) or leave (filter).
 */
import * as ort from 'onnxruntime-node';
import type { DecoderSession } from '@switchyard/models';
import type { KvArray, KvCache, PrefilledCache, StepLogits } from './kv-batch';
import type { StepBuffers } from './step-buffers';

export class PaddedKvBatch implements KvCache {
  private constructor(
    private readonly session: DecoderSession,
    private readonly buffers: StepBuffers,
    /** Per layer, key then value. */
    private kv: ort.Tensor[],
    /** Left padding of each row, in columns. */
    private pads: number[],
    /** Columns in the cache, padding included. */
    private columns: number,
  ) {}

  get size(): number {
    return this.pads.length;
  }

  get width(): number {
    return this.columns;
  }

  /** Runs new rows' prompts as a batch of their own, left-padded to the longest. */
  static async prefill(
    session: DecoderSession,
    buffers: StepBuffers,
    prompts: readonly number[][],
  ): Promise<PrefilledCache> {
    const rows = prompts.length;
    const seqLen = Math.max(...prompts.map((p) => p.length));
    const ids = buffers.idsView(rows * seqLen);
    const positions = buffers.positionsView(rows * seqLen);
    const pads = prompts.map((p) => seqLen - p.length);
    for (let r = 0; r < rows; r++) {
      const base = r * seqLen;
      const pad = pads[r];
      for (let t = 0; t < seqLen; t++) {
        const real = t >= pad;
        ids[base + t] = BigInt(real ? prompts[r][t - pad] : 0);
        positions[base + t] = BigInt(real ? t - pad : 0);
      }
    }
    const { logits, presents } = await session.forward({
      batchSize: rows,
      seqLen,
      pastLen: 0,
      inputIds: ids,
      attentionMask: buffers.maskView(pads, seqLen),
      positionIds: positions,
      past: null,
    });
    return {
      batch: new PaddedKvBatch(session, buffers, presents, pads, seqLen),
      logits: logits!.data as Float32Array,
      logSumExp: null,
      argmax: null,
      logitsMax: null,
      logitsRow: (r, position) => r * seqLen + pads[r] + position,
    };
  }

  async step(tokens: ArrayLike<number>): Promise<StepLogits> {
    const rows = this.pads.length;
    const ids = this.buffers.idsView(rows);
    const positions = this.buffers.positionsView(rows);
    for (let r = 0; r < rows; r++) {
      ids[r] = BigInt(tokens[r]);
      positions[r] = BigInt(this.columns - this.pads[r]);
    }
    const { logits, presents } = await this.session.forward({
      batchSize: rows,
      seqLen: 1,
      pastLen: this.columns,
      inputIds: ids,
      attentionMask: this.buffers.maskView(this.pads, this.columns + 1),
      positionIds: positions,
      past: this.kv,
    });
    this.kv = presents;
    this.columns += 1;
    return { logits: logits!.data as Float32Array, logSumExp: null, argmax: null, logitsMax: null };
  }

  /** Appends `other`'s rows after this batch's, padding the narrower one on the left. `other` is consumed. */
  concat(cache: KvCache): void {
    const other = cache as PaddedKvBatch;
    const width = Math.max(this.columns, other.columns);
    const rows = this.size + other.size;
    this.kv = this.kv.map((tensor, i) => {
      const [, heads, , headDim] = tensor.dims;
      const dest = newLike(tensor.data as KvArray, rows * heads * width * headDim);
      copyRows(tensor.data as KvArray, this.size, heads, this.columns, headDim, dest, 0, width);
      copyRows(other.kv[i].data as KvArray, other.size, heads, other.columns, headDim, dest, this.size, width);
      return new ort.Tensor(tensor.type, dest, [rows, heads, width, headDim]);
    });
    this.pads = [
      ...this.pads.map((p) => p + width - this.columns),
      ...other.pads.map((p) => p + width - other.columns),
    ];
    this.columns = width;
    other.kv = [];
    other.pads = [];
  }

  /**
   * Keeps the rows at `keep` (ascending indices), then trims the left columns that are padding in every
   * remaining row. A no-op when nothing leaves and nothing can be trimmed.
   */
  filter(keep: readonly number[]): void {
    const trim = keep.length === 0 ? 0 : Math.min(...keep.map((r) => this.pads[r]));
    if (keep.length === this.size && trim === 0) return;
    const width = this.columns - trim;
    this.kv = this.kv.map((tensor) => {
      const [, heads, , headDim] = tensor.dims;
      const src = tensor.data as KvArray;
      const dest = newLike(src, keep.length * heads * width * headDim);
      const block = width * headDim;
      for (let j = 0; j < keep.length; j++) {
        for (let h = 0; h < heads; h++) {
          const from = ((keep[j] * heads + h) * this.columns + trim) * headDim;
          dest.set(src.subarray(from, from + block), (j * heads + h) * block);
        }
      }
      return new ort.Tensor(tensor.type, dest, [keep.length, heads, width, headDim]);
    });
    this.pads = keep.map((r) => this.pads[r] - trim);
    this.columns = width;
  }
}

function newLike(src: KvArray, length: number): KvArray {
  return src instanceof Uint16Array ? new Uint16Array(length) : new Float32Array(length);
}

/** Copies `rows` rows of [heads, width, headDim] into `dest` from row `destRow` on, right-aligned to `destWidth`. */
function copyRows(
  src: KvArray,
  rows: number,
  heads: number,
  width: number,
  headDim: number,
  dest: KvArray,
  destRow: number,
  destWidth: number,
): void {
  const block = width * headDim;
  const shift = (destWidth - width) * headDim;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < heads; h++) {
      const from = (r * heads + h) * block;
      dest.set(src.subarray(from, from + block), ((destRow + r) * heads + h) * destWidth * headDim + shift);
    }
  }
}
