/**
 * Run as a child process: loads a model and prints, as JSON, how much its resident memory grew and what the model's
 * own estimate said. ONNX Runtime is warmed first on another model (its code pages and thread pools are not the
 * model's), and the garbage collector runs before each reading (start it with --expose-gc). With ROWS and LENGTH
 * it then runs one prefill of ROWS rows of LENGTH tokens, and prints that growth too, with the working-memory
 * estimate for it.
 * usage: node --expose-gc measure-load.js DIR CACHE_DIR [QUANTIZE [ROWS LENGTH]]
 */
import { loadModel, workingBytes } from '@switchyard/models';
import { modelDir } from './repo';

async function main(): Promise<void> {
  const [dir, cacheDir, quantize = 'none', rowsArg, lengthArg] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc;
  const warm = await loadModel(modelDir('demo-tiny'), { cacheDir, intraOpThreads: 1, fuseAttention: false });
  await warm.release();
  gc?.();
  const before = process.memoryUsage().rss;
  const model = await loadModel(dir, { cacheDir, intraOpThreads: 1, quantize: quantize as 'none' | 'q8' | 'q4' });
  gc?.();
  const growth = process.memoryUsage().rss - before;
  let prefill = null;
  if (rowsArg && lengthArg) {
    const rows = Number(rowsArg);
    const length = Number(lengthArg);
    const atLoad = process.memoryUsage().rss;
    await model.session.forward({
      batchSize: rows,
      seqLen: length,
      pastLen: 0,
      inputIds: new BigInt64Array(rows * length).fill(5n),
      positionIds: BigInt64Array.from({ length: rows * length }, (_, i) => BigInt(i % length)),
      cacheLengths: new BigInt64Array(rows),
      logitsIndex: BigInt64Array.from({ length: rows }, (_, r) => BigInt(r * length + length - 1)),
      logitsPerRow: 1,
      past: null,
      skipLogits: true,
    });
    gc?.();
    // rows of `length` tokens at most: the estimate for a scheduler whose largest prefill is this one
    const estimate = workingBytes({ ...model.memory, maxPositions: length }, rows * length);
    prefill = { growth: process.memoryUsage().rss - atLoad, estimate };
  }
  console.log(
    JSON.stringify({
      growth,
      estimate: model.memory.weightBytes + model.memory.sessionBytes,
      dtype: model.info.dtype,
      attention: model.info.attention,
      prefill,
    }),
  );
  await model.release();
}

void main();
