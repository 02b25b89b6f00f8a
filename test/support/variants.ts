/**
 * The variants of a demo model that real exports come in, made with Switchyard's own converter into a temporary
 * directory: float16, q8, q4 and q4f16 graphs (onnx-community's file names), the weights in an external data file
 * under a subdirectory, and every weight inline in one protobuf. Made once per test file, in milliseconds.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { convertModel, OnnxModel } from '@switchyard/models';
import { modelDir } from './repo';

export type Variant = 'fp16' | 'q8' | 'q4' | 'q4f16' | 'external' | 'inline';

export interface Variants {
  root: string;
  dir(variant: Variant): string;
  remove(): void;
}

/** Copies the model's small files (config, tokenizer, goldens) into `dir`. */
function copySmallFiles(source: string, dir: string): void {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  cpSync(source, dir, { recursive: true, filter: (src) => !src.includes('/onnx') });
}

export function makeVariants(
  model = 'demo-tiny',
  which: Variant[] = ['fp16', 'q8', 'q4', 'q4f16', 'external', 'inline'],
): Variants {
  const root = mkdtempSync(join(tmpdir(), `switchyard-${model}-variants-`));
  const source = modelDir(model);
  const dir = (variant: Variant) => join(root, variant);
  for (const variant of which) {
    if (variant === 'external' || variant === 'inline') {
      copySmallFiles(source, dir(variant));
      const file = join(source, 'onnx/model.onnx');
      const graph = OnnxModel.read(file, readFileSync(file), dirname(file));
      const graphFile = join(dir(variant), 'onnx/model.onnx');
      if (variant === 'inline') {
        graph.initializers = new Map([...graph.initializers].map(([name, t]) => [name, t.inlined()]));
        graph.save({ graphFile, dataFile: null });
      } else {
        mkdirSync(join(dir(variant), 'onnx/weights'), { recursive: true });
        graph.save({ graphFile, dataFile: join(dir(variant), 'onnx/weights/all.bin'), moveToData: () => true });
      }
      continue;
    }
    convertModel(source, dir(variant), {
      dtype: variant === 'fp16' || variant === 'q4f16' ? 'fp16' : 'fp32',
      quantize: variant === 'q8' ? 'q8' : variant === 'q4' || variant === 'q4f16' ? 'q4' : 'none',
      quantizeBlockSize: null,
    });
  }
  return { root, dir, remove: () => rmSync(root, { recursive: true, force: true }) };
}
