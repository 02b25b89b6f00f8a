/** The KV batch specs' fixture: the demo model in both cache layouts, and how far two logit rows differ. */
import { after, before } from 'node:test';
import { loadModel, LoadedModel } from '@switchyard/models';
import { modelDir } from './repo';

export interface BothLayouts {
  /** The export as it is (padded layout): the reference the other layout is held to. */
  exported: LoadedModel;
  /** The same model with its attention fused (ragged layout). */
  fused: LoadedModel;
}

/** Loads demo-tiny both ways before the current suite and releases both after it; the fields are set in `before`. */
export function demoTinyInBothLayouts(): BothLayouts {
  const models = {} as BothLayouts;
  before(async () => {
    models.exported = await loadModel(modelDir('demo-tiny'), { fuseAttention: false });
    models.fused = await loadModel(modelDir('demo-tiny'));
  });
  after(async () => {
    await models.exported.release();
    await models.fused.release();
  });
  return models;
}

export function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
