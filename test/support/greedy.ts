/**
 * Greedy decoding straight on a loaded model's session: no engine, no batch, no KV cache (each step recomputes the
 * whole sequence), so it is an independent reference for what the engine and the platform must produce.
 */
import type { LoadedModel } from '@switchyard/models';
import type { GoldenCase } from './repo';

/** Greedy ids for a prompt, `count` tokens or up to and including a stop id. */
export async function greedyIds(
  model: LoadedModel,
  prompt: number[],
  count: number,
  stop: number[],
): Promise<number[]> {
  const ids = [...prompt];
  const out: number[] = [];
  while (out.length < count) {
    const n = ids.length;
    const result = await model.session.forward({
      batchSize: 1,
      seqLen: n,
      pastLen: 0,
      inputIds: BigInt64Array.from(ids, BigInt),
      positionIds: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      cacheLengths: BigInt64Array.of(0n),
      logitsIndex: BigInt64Array.of(BigInt(n - 1)),
      logitsPerRow: 1,
      past: null,
      skipLogits: true,
    });
    const next = Number(result.argmax![0]);
    out.push(next);
    if (stop.includes(next)) break;
    ids.push(next);
  }
  return out;
}

/** How many cases' greedy output over their first `count` tokens is the golden's. */
export async function goldenAgreement(
  model: LoadedModel,
  cases: GoldenCase[],
  count: number,
  stop: number[],
): Promise<number> {
  let agree = 0;
  for (const c of cases) {
    const out = await greedyIds(model, c.prompt_ids, count, stop);
    if (JSON.stringify(out) === JSON.stringify(c.greedy_ids.slice(0, out.length))) agree++;
  }
  return agree;
}
