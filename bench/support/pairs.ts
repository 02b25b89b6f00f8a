/**
 * The platform against the engine alone on one workload: in pairs, run in alternating order (engine first, then
 * platform first, ...), so that a shared machine's drift falls on both sides. The figures are medians over the
 * pairs; every pair's runs are kept for the tables.
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

export async function pairedRuns(
  pairs: number,
  engineRun: (pair: number) => Promise<LoadResult>,
  platformRun: (pair: number) => Promise<LoadResult>,
): Promise<PairedRuns> {
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
  const ratios = engine.map((e, i) => platform[i].tokensPerSecond / e.tokensPerSecond);
  return {
    engine,
    platform,
    ratios,
    ratio: median(ratios),
    addedTtftP50: median(engine.map((e, i) => platform[i].ttft.p50 - e.ttft.p50)),
  };
}
