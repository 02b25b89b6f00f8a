/**
 * The ragged layout (the fused graph): per layer one buffer that this class owns, row r's tokens at columns
 * [0, length_r); a step returns only the new tokens' keys and values, which are written in place at each row's end.
 * Rows that leave are compacted in place; rows that join are copied in.
 */
import * as ort from 'onnxruntime-node';
import type { DecoderSession } from '@switchyard/models';
import type { KvArray, KvCache, PrefilledCache, StepLogits } from './kv-batch';
import type { StepBuffers } from './step-buffers';

/** Column capacity grows and shrinks in steps of this many columns, so a step rarely reallocates. */
const COLUMN_CHUNK = 32;

function roundUp(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}

/**
 * The cache of a session in the ragged layout. Per layer a key buffer [rowCapacity, kvHeads, headDim, columns]
 * (transposed, as the rewritten graph reads it) and a value buffer [rowCapacity, kvHeads, columns, headDim]; row r
 * holds its tokens at columns [0, lengths[r]).
 */
export class RaggedKvBatch implements KvCache {
  /**
   * Per layer, key then value: the buffers that `layers` view. A cache that shrinks keeps them, so that growing
   * again (every few steps while rows come and go) moves the tokens in place instead of allocating and zeroing
   * tens of megabytes at a full batch. They never exceed the largest shape the batch has had.
   */
  private backing: KvArray[];
  /** Per layer, key then value: views of `backing` over [rowCapacity, ...] at the current column stride. */
  private layers: KvArray[];
  private rowCapacity: number;
  /** The row stride in columns: the width of the past the session is given. */
  private columns: number;
  /** Cached past tensors over the first `size` rows; rebuilt when the rows or the columns change. */
  private views: ort.Tensor[] | null = null;

  private constructor(
    private readonly session: DecoderSession,
    private readonly buffers: StepBuffers,
    private readonly kvHeads: number,
    private readonly headDim: number,
    private lengths: number[],
    rowCapacity: number,
    columns: number,
  ) {
    this.rowCapacity = rowCapacity;
    this.columns = columns;
    this.backing = this.allocate(rowCapacity, columns);
    this.layers = this.backing;
  }

  get size(): number {
    return this.lengths.length;
  }

  get width(): number {
    let max = 0;
    for (const l of this.lengths) if (l > max) max = l;
    return max;
  }

  /** The columns the cache holds per row, padding included (what the session reads). */
  get capacity(): number {
    return this.columns;
  }

  private allocate(rows: number, columns: number): KvArray[] {
    const n = rows * this.kvHeads * columns * this.headDim;
    // float16 caches are held as their bits: the engine only moves them
    const half = this.session.signature.kvDtype === 'float16';
    return Array.from({ length: this.session.signature.numLayers * 2 }, () =>
      half ? new Uint16Array(n) : new Float32Array(n),
    );
  }

  /** Prefills right-padded prompts; their keys and values become the rows of a fresh cache. */
  static async prefill(
    session: DecoderSession,
    buffers: StepBuffers,
    prompts: readonly number[][],
    allPositions: boolean,
    wantLogits: boolean,
  ): Promise<PrefilledCache> {
    const rows = prompts.length;
    const seqLen = Math.max(...prompts.map((p) => p.length));
    const ids = buffers.idsView(rows * seqLen);
    const positions = buffers.positionsView(rows * seqLen);
    const perRow = allPositions ? seqLen : 1;
    const index = buffers.indexView(rows * perRow);
    for (let r = 0; r < rows; r++) {
      const base = r * seqLen;
      const prompt = prompts[r];
      for (let t = 0; t < seqLen; t++) {
        const real = t < prompt.length;
        ids[base + t] = BigInt(real ? prompt[t] : 0);
        positions[base + t] = BigInt(real ? t : 0);
      }
      if (allPositions) for (let t = 0; t < seqLen; t++) index[base + t] = BigInt(base + t);
      else index[r] = BigInt(base + prompt.length - 1);
    }
    const { logits, logSumExp, argmax, logitsMax, presents } = await session.forward({
      batchSize: rows,
      seqLen,
      pastLen: 0,
      inputIds: ids,
      positionIds: positions,
      cacheLengths: buffers.lengthsView(rows).fill(0n),
      logitsIndex: index,
      logitsPerRow: perRow,
      past: null,
      skipLogits: !wantLogits,
    });
    const [, kvHeads, , headDim] = presents[0].dims;
    const lengths = prompts.map((p) => p.length);
    const batch = new RaggedKvBatch(
      session,
      buffers,
      kvHeads,
      headDim,
      lengths,
      rows,
      roundUp(seqLen + 1, COLUMN_CHUNK),
    );
    for (let i = 0; i < presents.length; i++) batch.writeNew(i, presents[i].data as KvArray, seqLen, 0);
    return {
      batch,
      logits: logits ? (logits.data as Float32Array) : null,
      logSumExp,
      argmax,
      logitsMax,
      logitsRow: allPositions
        ? (r, position) => r * seqLen + position
        : (r, position) => (position === lengths[r] - 1 ? r : -1),
    };
  }

  /**
   * Writes new keys or values ([rows, kvHeads, seq, headDim], as the session returns them) into layer buffer `i`
   * (keys transposed). `fromColumn` 0: a prefill, each row's first length[r] tokens from column 0. null: a decode
   * step, one token per row at its end. A plain loop: no views, no allocation.
   */
  private writeNew(i: number, src: KvArray, seq: number, fromColumn: number | null): void {
    const { kvHeads, headDim, columns } = this;
    const dest = this.layers[i];
    const isKey = i % 2 === 0;
    for (let r = 0; r < this.size; r++) {
      const start = fromColumn ?? this.lengths[r];
      const count = fromColumn === null ? 1 : Math.min(seq, this.lengths[r]);
      for (let h = 0; h < kvHeads; h++) {
        const rh = r * kvHeads + h;
        for (let t = 0; t < count; t++) {
          const s = (rh * seq + t) * headDim;
          if (isKey) {
            const base = rh * headDim * columns + start + t;
            for (let d = 0; d < headDim; d++) dest[base + d * columns] = src[s + d];
          } else {
            const base = (rh * columns + start + t) * headDim;
            for (let d = 0; d < headDim; d++) dest[base + d] = src[s + d];
          }
        }
      }
    }
  }

  /**
   * Copies rows [from, from + count) of layer buffer `src` (row stride `srcColumns`) to rows [to, …) of `dest`
   * (this cache's stride), each row's own tokens only.
   */
  private copyRows(
    isKey: boolean,
    src: KvArray,
    srcColumns: number,
    from: number,
    count: number,
    dest: KvArray,
    to: number,
  ): void {
    const { kvHeads, headDim, columns } = this;
    for (let r = 0; r < count; r++) {
      const length = this.lengths[to + r];
      for (let h = 0; h < kvHeads; h++) {
        const srcRow = (from + r) * kvHeads + h;
        const destRow = (to + r) * kvHeads + h;
        if (isKey) {
          for (let d = 0; d < headDim; d++) {
            const s = (srcRow * headDim + d) * srcColumns;
            const t = (destRow * headDim + d) * columns;
            if (src === dest) dest.copyWithin(t, s, s + length);
            else (dest as Float32Array).set(src.subarray(s, s + length), t);
          }
        } else {
          const s = srcRow * srcColumns * headDim;
          const t = destRow * columns * headDim;
          if (src === dest) dest.copyWithin(t, s, s + length * headDim);
          else (dest as Float32Array).set(src.subarray(s, s + length * headDim), t);
        }
      }
    }
  }

  /**
   * Reshapes to `rows` × `columns`, keeping every row's tokens: in place when the buffers hold the new shape,
   * into new buffers otherwise.
   */
  private reshape(rows: number, columns: number): void {
    const n = rows * this.kvHeads * columns * this.headDim;
    const oldColumns = this.columns;
    this.rowCapacity = rows;
    this.columns = columns;
    this.views = null;
    if (n <= this.backing[0].length) {
      if (columns !== oldColumns) {
        for (let i = 0; i < this.backing.length; i++) this.restride(i % 2 === 0, this.backing[i], oldColumns);
      }
      this.layers = this.backing.map((buffer) => buffer.subarray(0, n));
      return;
    }
    const old = this.layers;
    this.backing = this.allocate(rows, columns);
    this.layers = this.backing;
    for (let i = 0; i < old.length; i++)
      this.copyRows(i % 2 === 0, old[i], oldColumns, 0, this.size, this.layers[i], 0);
  }

  /**
   * Moves every row's tokens within `buffer` from row stride `oldColumns` to the current one. A wider stride moves
   * them right, so the lines go from the last back to the first; a narrower one moves them left, first to last:
   * either way no line lands on one not yet moved (each row's length fits both strides).
   */
  private restride(isKey: boolean, buffer: KvArray, oldColumns: number): void {
    const { kvHeads, headDim, columns } = this;
    const grow = columns > oldColumns;
    const lines = this.size * kvHeads;
    for (let k = 0; k < lines; k++) {
      const rh = grow ? lines - 1 - k : k;
      const length = this.lengths[Math.floor(rh / kvHeads)];
      if (isKey) {
        // [row, head, headDim, columns]: one line of columns per (row, head, d)
        for (let j = 0; j < headDim; j++) {
          const line = rh * headDim + (grow ? headDim - 1 - j : j);
          buffer.copyWithin(line * columns, line * oldColumns, line * oldColumns + length);
        }
      } else {
        // [row, head, columns, headDim]: one block of columns × headDim per (row, head)
        buffer.copyWithin(rh * columns * headDim, rh * oldColumns * headDim, (rh * oldColumns + length) * headDim);
      }
    }
  }

  private past(): ort.Tensor[] {
    if (!this.views) {
      const n = this.size * this.kvHeads * this.columns * this.headDim;
      const keyDims = [this.size, this.kvHeads, this.headDim, this.columns];
      const valueDims = [this.size, this.kvHeads, this.columns, this.headDim];
      const type = this.session.signature.kvDtype;
      this.views = this.layers.map((layer, i) =>
        type === 'float16'
          ? new ort.Tensor('float16', layer.subarray(0, n) as Uint16Array, i % 2 === 0 ? keyDims : valueDims)
          : new ort.Tensor('float32', layer.subarray(0, n) as Float32Array, i % 2 === 0 ? keyDims : valueDims),
      );
    }
    return this.views;
  }

  async step(tokens: ArrayLike<number>, wantLogits = true): Promise<StepLogits> {
    const rows = this.size;
    const longest = this.width;
    if (longest + 1 > this.columns) this.reshape(this.rowCapacity, roundUp(longest + 1, COLUMN_CHUNK));
    const ids = this.buffers.idsView(rows);
    // A row's new token sits at its cached length: one array is both the positions and the cache lengths.
    const lengths = this.buffers.lengthsView(rows);
    for (let r = 0; r < rows; r++) {
      ids[r] = BigInt(tokens[r]);
      lengths[r] = BigInt(this.lengths[r]);
    }
    const { logits, logSumExp, argmax, logitsMax, presents } = await this.session.forward({
      batchSize: rows,
      seqLen: 1,
      pastLen: this.columns,
      inputIds: ids,
      positionIds: lengths,
      cacheLengths: lengths,
      logitsIndex: this.buffers.identityIndex(rows),
      logitsPerRow: 1,
      past: this.past(),
      skipLogits: !wantLogits,
    });
    for (let i = 0; i < presents.length; i++) this.writeNew(i, presents[i].data as KvArray, 1, null);
    for (let r = 0; r < rows; r++) this.lengths[r] += 1;
    return { logits: logits ? (logits.data as Float32Array) : null, logSumExp, argmax, logitsMax };
  }

  concat(cache: KvCache): void {
    const other = cache as RaggedKvBatch;
    const rows = this.size + other.size;
    const need = roundUp(Math.max(this.width, other.width) + 1, COLUMN_CHUNK);
    if (rows > this.rowCapacity || need > this.columns) {
      this.reshape(Math.max(rows, this.rowCapacity), Math.max(need, this.columns));
    }
    const at = this.size;
    this.lengths.push(...other.lengths);
    for (let i = 0; i < this.layers.length; i++) {
      this.copyRows(i % 2 === 0, other.layers[i], other.columns, 0, other.size, this.layers[i], at);
    }
    this.views = null;
    other.backing = [];
    other.layers = [];
    other.lengths = [];
  }

  filter(keep: readonly number[]): void {
    if (keep.length === this.size) return;
    for (let j = 0; j < keep.length; j++) {
      if (keep[j] === j) continue;
      this.lengths[j] = this.lengths[keep[j]];
      for (let i = 0; i < this.layers.length; i++) {
        this.copyRows(i % 2 === 0, this.layers[i], this.columns, keep[j], 1, this.layers[i], j);
      }
    }
    this.lengths.length = keep.length;
    this.views = null;
    // Give back columns the longest remaining row no longer needs: every step reads the whole width.
    const need = roundUp(this.width + 1, COLUMN_CHUNK);
    if (keep.length > 0 && need + COLUMN_CHUNK <= this.columns) this.reshape(this.rowCapacity, need);
  }
}
