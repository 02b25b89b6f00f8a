/**
 * The input arrays of every forward call (ids, positions, attention mask, cache lengths, logits indices), reused
 * across steps and batches: they grow to the largest batch seen and are then viewed with `subarray`, so a decode
 * step allocates no input arrays.
 */
export class StepBuffers {
  private ids = new BigInt64Array(0);
  private positions = new BigInt64Array(0);
  private mask = new BigInt64Array(0);
  private lengths = new BigInt64Array(0);
  private index = new BigInt64Array(0);
  private identity = new BigInt64Array(0);

  idsView(n: number): BigInt64Array {
    if (this.ids.length < n) this.ids = new BigInt64Array(grow(n));
    return this.ids.subarray(0, n);
  }

  positionsView(n: number): BigInt64Array {
    if (this.positions.length < n) this.positions = new BigInt64Array(grow(n));
    return this.positions.subarray(0, n);
  }

  /** Room for `n` logits indices. */
  indexView(n: number): BigInt64Array {
    if (this.index.length < n) this.index = new BigInt64Array(grow(n));
    return this.index.subarray(0, n);
  }

  /** The indices 0 … n-1 (each decode row's one logits position), filled once. */
  identityIndex(n: number): BigInt64Array {
    if (this.identity.length < n) this.identity = BigInt64Array.from({ length: grow(n) }, (_, i) => BigInt(i));
    return this.identity.subarray(0, n);
  }

  lengthsView(n: number): BigInt64Array {
    if (this.lengths.length < n) this.lengths = new BigInt64Array(grow(n));
    return this.lengths.subarray(0, n);
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
