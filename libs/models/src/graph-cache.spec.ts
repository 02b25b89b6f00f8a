/**
 * The graph cache: a quantized graph is built once and read back after; it is built again when what it was made
 * from changes (the model's files, the options, ONNX Runtime's version), and not when only a file's timestamps do.
 * ONNX Runtime's optimised graph is kept the same way, and a session read from it gives the goldens.
 */
import assert from 'node:assert/strict';
import {
  closeSync,
  cpSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { greedyIds } from '../../../test/support/greedy';
import { loadGoldens, modelDir } from '../../../test/support/repo';
import { GraphCache } from './graph-cache';
import { LoadedModel, loadModel, LoadOptions } from './model-loader';

const root = mkdtempSync(join(tmpdir(), 'switchyard-graph-cache-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Loads and releases; true when the load built the quantized graph, false when it read it from the cache. */
async function built(dir: string, cacheDir: string, options: Partial<LoadOptions>): Promise<boolean> {
  const model = await loadModel(dir, { intraOpThreads: 1, cacheDir, quantize: 'q8', ...options });
  await model.release();
  return model.timings.quantize !== undefined;
}

describe('graph cache', () => {
  it('builds a quantized graph once, and again when the weights change', async () => {
    const dir = join(root, 'model');
    cpSync(modelDir('demo-tiny'), dir, { recursive: true });
    const cacheDir = join(root, 'cache-files');
    assert.equal(await built(dir, cacheDir, {}), true);
    assert.equal(await built(dir, cacheDir, {}), false);
    // one weight's byte changes, the file's size does not
    const data = join(dir, 'onnx/model.onnx_data');
    const fd = openSync(data, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 4096);
    byte[0] ^= 0x40;
    writeSync(fd, byte, 0, 1, 4096);
    closeSync(fd);
    assert.equal(await built(dir, cacheDir, {}), true, 'new weights, new entry');
    assert.equal(await built(dir, cacheDir, {}), false);
  });

  it('reads the same entry when only a file timestamp changes (the key is the content)', async () => {
    const dir = join(root, 'touched');
    cpSync(modelDir('demo-tiny'), dir, { recursive: true });
    const cacheDir = join(root, 'cache-touch');
    assert.equal(await built(dir, cacheDir, {}), true);
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, 'onnx/model.onnx_data'), later, later);
    assert.equal(await built(dir, cacheDir, {}), false);
  });

  it('builds again for other options and for another ONNX Runtime version', async () => {
    const cacheDir = join(root, 'cache-options');
    const dir = modelDir('demo-tiny');
    assert.equal(await built(dir, cacheDir, {}), true);
    assert.equal(await built(dir, cacheDir, { quantize: 'q4' }), true);
    assert.equal(await built(dir, cacheDir, { quantizeBlockSize: 64 }), true);
    assert.equal(await built(dir, cacheDir, { fuseAttention: false }), true);
    assert.equal(await built(dir, cacheDir, { runtimeVersion: '0.0.0-test' }), true);
    // and each of them is there the second time
    for (const options of [
      {},
      { quantize: 'q4' as const },
      { quantizeBlockSize: 64 },
      { runtimeVersion: '0.0.0-test' },
    ]) {
      assert.equal(await built(dir, cacheDir, options), false, JSON.stringify(options));
    }
  });

  it('hashes a file once per content, whatever reads it', () => {
    const cache = new GraphCache(join(root, 'cache-hash'));
    let hashed = 0;
    const file = join(modelDir('demo-tiny'), 'onnx/model.onnx_data');
    const first = cache.fingerprint(file, () => hashed++);
    const second = cache.fingerprint(file, () => hashed++);
    assert.equal(first, second);
    assert.match(first, /^[0-9a-f]{64}$/);
    assert.equal(hashed, 1);
  });

  for (const quantize of ['none', 'q8', 'q4'] as const) {
    it(`keeps ONNX Runtime's optimised graph (${quantize}) once the rewrite is checked, serves the same tokens from it, and rebuilds a damaged one`, async () => {
      const cacheDir = join(root, `cache-optimized-${quantize}`);
      const goldens = loadGoldens('demo-small');
      const cases = goldens.cases.slice(0, 4);
      const tokens = async (model: LoadedModel) => {
        const out: number[][] = [];
        for (const c of cases) out.push(await greedyIds(model, c.prompt_ids, 12, goldens.stop_ids));
        return out;
      };
      const load = (options: Partial<LoadOptions> = {}) =>
        loadModel(modelDir('demo-small'), { intraOpThreads: 1, cacheDir, quantize, ...options });
      // the reference: the same graph in a session ONNX Runtime optimises itself (the first load checks the rewrite)
      const plain = await load({ optimizedCache: false });
      const expected = await tokens(plain);
      await plain.release();
      if (quantize === 'none') {
        expected.forEach((ids, i) => assert.deepEqual(ids, cases[i].greedy_ids.slice(0, ids.length), 'the goldens'));
      }
      const optimized = async (options: Partial<LoadOptions> = {}) => {
        const model = await load(options);
        try {
          assert.deepEqual(await tokens(model), expected, `${model.info.optimizedGraph}: the same tokens`);
          return model.info.optimizedGraph;
        } finally {
          await model.release();
        }
      };
      assert.equal(await optimized(), 'written');
      assert.equal(await optimized(), 'read');
      assert.equal(await optimized(), 'read');
      // another ONNX Runtime: the rewrite is checked again, then the optimised graph has an entry of its own
      assert.equal(await optimized({ runtimeVersion: '0.0.0-test' }), 'none');
      assert.equal(await optimized({ runtimeVersion: '0.0.0-test' }), 'written');
      // a damaged copy is not served: it is built again, and read after
      const files = (readdirSync(cacheDir, { recursive: true }) as string[]).filter((f) =>
        f.endsWith('optimized.onnx'),
      );
      assert.equal(files.length, 2);
      for (const file of files) truncateSync(join(cacheDir, file), Math.floor(statSync(join(cacheDir, file)).size / 2));
      assert.equal(await optimized(), 'written');
      assert.equal(await optimized(), 'read');
    });
  }
});
