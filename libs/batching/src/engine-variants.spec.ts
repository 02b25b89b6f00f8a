/**
 * The engine on the precisions real exports come in (made by the converter from demo-tiny): a float16 KV cache held
 * as its bits and moved by the ragged batch, and quantized MatMuls. Each request's tokens, batched with others that
 * join and leave, are the ones the same model gives it alone, computed straight on the session; as everywhere, a
 * near-tie (a top-2 margin under 1 % of the logits' scale) may go either way.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { loadModel, LoadedModel } from '@switchyard/models';
import { loadGoldens } from '../../../test/support/repo';
import { makeVariants, Variant } from '../../../test/support/variants';
import { Engine } from './engine';
import { defaultParameters } from './parameters';

const variants = makeVariants('demo-tiny', ['fp16', 'q4f16', 'q8']);
after(() => variants.remove());
const goldens = loadGoldens('demo-tiny');

/** Greedy tokens at batch 1, and the top-2 margin (relative to the largest logit) at each step. */
async function alone(
  model: LoadedModel,
  prompt: number[],
  count: number,
): Promise<{ ids: number[]; margins: number[] }> {
  const ids = [...prompt];
  const out: number[] = [];
  const margins: number[] = [];
  const vocab = model.config.vocabSize;
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
    });
    const logits = result.logits!.data as Float32Array;
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[v] > logits[best]) best = v;
    let second = -Infinity;
    let scale = 1;
    for (let v = 0; v < vocab; v++) {
      if (v !== best && logits[v] > second) second = logits[v];
      scale = Math.max(scale, Math.abs(logits[v]));
    }
    out.push(best);
    margins.push((logits[best] - second) / scale);
    ids.push(best);
  }
  return { ids: out, margins };
}

describe('engine on converted variants', () => {
  for (const variant of ['fp16', 'q4f16', 'q8'] as Variant[]) {
    it(`${variant}: batched requests get the tokens each gets alone`, async () => {
      const model = await loadModel(variants.dir(variant), { intraOpThreads: 2 });
      try {
        assert.equal(model.session.signature.layout, 'ragged', model.info.fusionSkipped ?? '');
        const engine = new Engine(model, { maxWaitingTokens: 2 });
        const cases = goldens.cases.slice(0, 8);
        const count = 12;
        const expected: { ids: number[]; margins: number[] }[] = [];
        for (const c of cases) expected.push(await alone(model, c.prompt_ids, count));
        // all at once, with the later ones joining a running batch
        let id = 0;
        const results = await Promise.all(
          cases.map(async (c, i) => {
            if (i >= 4) await new Promise((r) => setImmediate(r));
            return engine.generate({
              id: `v${id++}`,
              inputIds: c.prompt_ids,
              parameters: defaultParameters({ maxNewTokens: count }),
            });
          }),
        );
        results.forEach((result, i) => {
          const got = result.tokens.map((t) => t.token.id);
          const want = expected[i];
          // a row ends at an eos id; the reference goes on past it
          const stop = want.ids.findIndex((tok) => goldens.stop_ids.includes(tok));
          assert.ok(
            got.length === count || got.length === stop + 1 || want.margins.slice(0, got.length).some((m) => m < 1e-2),
          );
          for (let t = 0; t < got.length; t++) {
            if (got[t] === want.ids[t]) continue;
            assert.ok(
              want.margins[t] < 1e-2,
              `${variant} case ${i} token ${t}: ${got[t]} != ${want.ids[t]} (margin ${want.margins[t]})`,
            );
            break;
          }
        });
      } finally {
        await model.release();
      }
    });
  }
});
