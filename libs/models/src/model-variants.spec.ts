/**
 * The model runtime on the precisions and layouts real exports come in: float16, q8, q4 and q4f16 graphs made by the
 * converter, weights in an external file or inline, quantization at load, the graph cache, and the load-time check of
 * the attention rewrite. Greedy outputs are held to the goldens (computed with the fp32 export at batch 1).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { makeVariants } from '../../../test/support/variants';
import { goldenAgreement as agreement, greedyIds as greedy } from '../../../test/support/greedy';
import { loadGoldens, modelDir } from '../../../test/support/repo';
import { LoadedModel, loadModel, LoadOptions } from './model-loader';
import { OnnxModel } from './onnx/onnx-model';
import { OnnxNode } from './onnx/onnx-node';
import { OnnxTensor, TensorType } from './onnx/onnx-tensor';

const cacheDir = mkdtempSync(join(tmpdir(), 'switchyard-cache-'));
const variants = makeVariants('demo-tiny');
after(() => {
  variants.remove();
  rmSync(cacheDir, { recursive: true, force: true });
});

function load(dir: string, options: Partial<LoadOptions> = {}): Promise<LoadedModel> {
  return loadModel(dir, { intraOpThreads: 2, cacheDir, ...options });
}

describe('model variants', () => {
  const tiny = loadGoldens('demo-tiny');

  for (const [variant, dtype, kvDtype] of [
    ['fp16', 'fp16', 'float16'],
    ['q8', 'q8', 'float32'],
    ['q4', 'q4', 'float32'],
    ['q4f16', 'q4f16', 'float16'],
    ['external', 'fp32', 'float32'],
    ['inline', 'fp32', 'float32'],
  ] as const) {
    it(`serves the ${variant} graph with the attention rewrite in force`, async () => {
      const model = await load(variants.dir(variant));
      try {
        assert.equal(model.info.attention, 'fused', model.info.fusionSkipped ?? '');
        assert.equal(model.info.dtype, dtype);
        assert.equal(model.info.quantize, 'none', 'a converted graph is served as it is');
        assert.equal(model.info.kvDtype, kvDtype);
        assert.equal(model.memory.kvBytesPerToken, 2 * 4 * 2 * 32 * (kvDtype === 'float16' ? 2 : 4));
        const out = await greedy(model, tiny.cases[0].prompt_ids, 8, tiny.stop_ids);
        assert.equal(out.length, 8, 'it generates');
        if (variant === 'external' || variant === 'inline') {
          // the same weights as the bundled export: the goldens exactly
          assert.equal(await agreement(model, tiny.cases, tiny.max_new_tokens, tiny.stop_ids), tiny.cases.length);
        }
      } finally {
        await model.release();
      }
    });
  }

  it('keeps float16 close to float32: the goldens over 16 tokens on at least 8 of 10 prompts', async () => {
    const model = await load(variants.dir('fp16'));
    const agree = await agreement(model, tiny.cases.slice(0, 10), 16, tiny.stop_ids);
    await model.release();
    assert.ok(agree >= 8, `${agree} of 10`);
  });

  it('quantizes at load once: the second load reads the cache and skips the check', async () => {
    const first = await load(modelDir('demo-tiny'), { quantize: 'q4' });
    await first.release();
    assert.ok(first.timings.quantize > 0 && first.timings.check > 0, JSON.stringify(first.timings));
    assert.equal(first.info.quantize, 'q4');
    assert.equal(first.info.dtype, 'q4');
    const second = await load(modelDir('demo-tiny'), { quantize: 'q4' });
    try {
      assert.equal(second.timings.quantize, undefined, JSON.stringify(second.timings));
      assert.equal(second.timings.check, undefined, 'the verdict is kept');
      assert.equal(second.info.attention, 'fused');
      const prompt = tiny.cases[1].prompt_ids;
      // the same graph, so the same tokens, whichever load made it
      const again = await load(modelDir('demo-tiny'), { quantize: 'q4' });
      assert.deepEqual(await greedy(second, prompt, 12, []), await greedy(again, prompt, 12, []));
      await again.release();
    } finally {
      await second.release();
    }
  });

  it("quantized q8 keeps demo-small's goldens over 16 tokens on at least 8 of 10 prompts", async () => {
    const small = loadGoldens('demo-small');
    const model = await load(modelDir('demo-small'), { quantize: 'q8' });
    try {
      assert.equal(model.info.dtype, 'q8');
      assert.equal(model.info.attention, 'fused');
      const agree = await agreement(model, small.cases.slice(0, 10), 16, small.stop_ids);
      assert.ok(agree >= 8, `${agree} of 10`);
    } finally {
      await model.release();
    }
  });

  it('serves the export, loudly, when the rewrite disagrees with it; and remembers', async () => {
    // An export the matcher accepts but the rewrite does not reproduce: each layer's mask is multiplied by zero
    // before it is added to the scores, so the export attends to later tokens; the rewrite brings its own mask.
    const dir = join(variants.root, 'disagrees');
    const source = join(variants.dir('external'), 'onnx/model.onnx');
    const model = OnnxModel.read(source, readFileSync(source), dirname(source));
    model.initializers.set('zero', OnnxTensor.inline('zero', TensorType.Float, [], new Uint8Array(4)));
    let changed = 0;
    model.nodes = model.nodes.flatMap((node) => {
      if (node.opType !== 'Add' || node.inputs.length !== 2) return [node];
      const consumer = model.nodes.find((n) => n.inputs.includes(node.outputs[0]));
      if (consumer?.opType !== 'Softmax') return [node];
      const unmasked = `${node.inputs[1]}_times_zero_${changed++}`;
      return [
        OnnxNode.make('Mul', [node.inputs[1], 'zero'], [unmasked], unmasked),
        node.rewired([node.inputs[0], unmasked], node.outputs),
      ];
    });
    assert.equal(changed, 4, 'one Add per layer');
    const { cpSync, mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'onnx'), { recursive: true });
    cpSync(variants.dir('external'), dir, { recursive: true });
    model.save({ graphFile: join(dir, 'onnx/model.onnx'), dataFile: null });
    const progress: string[] = [];
    const first = await load(dir, { onProgress: (m) => progress.push(m) });
    await first.release();
    assert.equal(first.info.attention, 'exported');
    assert.match(first.info.fusionSkipped ?? '', /disagreed with the export/);
    assert.ok(
      progress.some((m) => /^WARNING: .*disagreed/.test(m)),
      progress.join('\n'),
    );
    const second = await load(dir);
    await second.release();
    assert.equal(second.info.attention, 'exported');
    assert.equal(second.timings.check, undefined, 'the failed verdict is kept: no second check');
    assert.ok(existsSync(cacheDir));
  });
});
