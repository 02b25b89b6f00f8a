/**
 * Run as a child process: loads a model and prints, as JSON, how much its resident memory grew and what the model's
 * own estimate said. ONNX Runtime is warmed first on another model (its code pages and thread pools are not the
 * model's), and the garbage collector runs before each reading (start it with --expose-gc).
 * usage: node --expose-gc measure-load.js DIR CACHE_DIR [QUANTIZE]
 */
import { loadModel } from '@switchyard/models';
import { modelDir } from './repo';

async function main(): Promise<void> {
  const [dir, cacheDir, quantize = 'none'] = process.argv.slice(2);
  const gc = (globalThis as { gc?: () => void }).gc;
  const warm = await loadModel(modelDir('demo-tiny'), { cacheDir, intraOpThreads: 1, fuseAttention: false });
  await warm.release();
  gc?.();
  const before = process.memoryUsage().rss;
  const model = await loadModel(dir, { cacheDir, intraOpThreads: 1, quantize: quantize as 'none' | 'q8' | 'q4' });
  gc?.();
  const growth = process.memoryUsage().rss - before;
  console.log(
    JSON.stringify({
      growth,
      estimate: model.memory.weightBytes,
      dtype: model.info.dtype,
      attention: model.info.attention,
    }),
  );
  await model.release();
}

void main();
