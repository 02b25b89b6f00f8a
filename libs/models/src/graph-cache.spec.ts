/**
 * The graph cache: a quantized graph is built once and read back after; it is built again when what it was made
 * from changes (the model's files, the options, ONNX Runtime's version), and not when only a file's timestamps do.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, openSync, closeSync, readSync, rmSync, utimesSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { modelDir } from '../../../test/support/repo';
import { GraphCache } from './graph-cache';
import { loadModel, LoadOptions } from './model-loader';

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
    for (const options of [{}, { quantize: 'q4' as const }, { quantizeBlockSize: 64 }, { runtimeVersion: '0.0.0-test' }]) {
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
});
