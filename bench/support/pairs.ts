/**
 * The platform against the engine alone on one workload: in pairs, run in alternating order (engine first, then
 * platform first, ...), so that a shared machine's drift falls on both sides. The figures are medians over the
 * pairs; every pair's runs are kept for the tables. One warm-up pair runs first and is not counted: without it the
 * first platform run pays for the API's JIT compilation. `mergePairs` pools the pairs of several launches of the
 * platform: one launch can run a few percent faster or slower than another throughout, and a median over one
 * launch's pairs would carry that.
 */
import type { LoadResult } from '../loadgen';

export interface PairedRuns {
  engine: LoadResult[];
  platform: LoadResult[];
  /** Platform / engine generated tokens per second, pair by pair. */
  ratios: number[];
  /** The median of `ratios`. */
  ratio: number;
  /** The platform's TTFT p50 minus the engine's (ms), median over the pairs. */
  addedTtftP50: number;
}

export function median(values: number[]): number {
  if (values.length === 0) throw new Error('the median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs the warm-up pair (index -1, not counted), then `pairs` pairs. */
export async function pairedRuns(
  pairs: number,
  engineRun: (pair: number) => Promise<LoadResult>,
  platformRun: (pair: number) => Promise<LoadResult>,
): Promise<PairedRuns> {
  await engineRun(-1);
  await platformRun(-1);
  const engine: LoadResult[] = [];
  const platform: LoadResult[] = [];
  for (let i = 0; i < pairs; i++) {
    if (i % 2 === 0) {
      engine.push(await engineRun(i));
      platform.push(await platformRun(i));
    } else {
      platform.push(await platformRun(i));
      engine.push(await engineRun(i));
    }
  }
  return summarizePairs(engine, platform);
}

/** The pairs of several `pairedRuns`, with the medians taken over all of them. */
export function mergePairs(parts: PairedRuns[]): PairedRuns {
  return summarizePairs(
    parts.flatMap((p) => p.engine),
    parts.flatMap((p) => p.platform),
  );
}

function summarizePairs(engine: LoadResult[], platform: LoadResult[]): PairedRuns {
  const ratios = engine.map((e, i) => platform[i].tokensPerSecond / e.tokensPerSecond);
  return {
    engine,
    platform,
    ratios,
    ratio: median(ratios),
    addedTtftP50: median(engine.map((e, i) => platform[i].ttft.p50 - e.ttft.p50)),
  };
}
