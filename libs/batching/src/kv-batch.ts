/**
 * The running batch's KV cache, TGI's CausalLMBatch design: per layer a [batch, kvHeads, width, headDim]
 * tensor, rows left-padded to a common width, with each row's padding count. One forward call per step for the
 * whole batch; the presents it returns become the next step's past as they are. Data is copied only when rows
 * join (concat) or leave (filter).
 */
import * as ort from 'onnxruntime-node';
import type { DecoderSession } from '@switchyard/models';

type KvArray = Float32Array | Uint16Array;

/**
 * Input buffers reused across steps and batches: they grow to the largest batch seen and are then viewed with
 * `subarray`, so a decode step allocates no input arrays.
 */
export class StepBuffers {
  private ids = new BigInt64Array(0);
  private positions = new BigInt64Array(0);
  private mask = new BigInt64Array(0);

  idsView(n: number): BigInt64Array {
    if (this.ids.length < n) this.ids = new BigInt64Array(grow(n));
    return this.ids.subarray(0, n);
  }

  positionsView(n: number): BigInt64Array {
    if (this.positions.length < n) this.positions = new BigInt64Array(grow(n));
    return this.positions.subarray(0, n);
  }

  /** The attention mask of `pads.length` left-padded rows of `width` columns. */
  maskView(pads: readonly number[], width: number): BigInt64Array {
    const n = pads.length * width;
    if (this.mask.length < n) this.mask = new BigInt64Array(grow(n));
    const mask = this.mask.subarray(0, n);
    for (let r = 0; r < pads.length; r++) {
      const start = r * width;
      mask.fill(0n, start, start + pads[r]);
      mask.fill(1n, start + pads[r], start + width);
    }
    return mask;
  }
}

function grow(n: number): number {
  return Math.max(64, 2 ** Math.ceil(Math.log2(n)));
}

export interface PrefillResult {
  batch: KvBatch;
  /** [rows, seqLen, vocab]: row r's next-token logits are at position seqLen - 1. */
  logits: ort.Tensor;
  seqLen: number;
}

export class KvBatch {
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

  /** Real (unpadded) tokens of row r in the cache. */
  rowLength(r: number): number {
    return this.columns - this.pads[r];
  }

  /** Runs new rows' prompts as a batch of their own, left-padded to the longest. */
  static async prefill(
    session: DecoderSession,
    buffers: StepBuffers,
    prompts: readonly number[][],
  ): Promise<PrefillResult> {
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
    return { batch: new KvBatch(session, buffers, presents, pads, seqLen), logits, seqLen };
  }

  /** One decode step: `tokens[r]` is row r's newest token. Returns logits [rows, 1, vocab]. */
  async step(tokens: ArrayLike<number>): Promise<ort.Tensor> {
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
    return logits;
  }

  /** Appends `other`'s rows after this batch's, padding the narrower one on the left. `other` is consumed. */
  concat(other: KvBatch): void {
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
