/**
 * Converts a model directory ahead of serving, as llama.cpp's `quantize` does: float16 weights, weight-only q8 or
 * q4 MatMuls, or both, written as a new directory (or beside the source graph) in the onnx-community layout
 * (`onnx/model_fp16.onnx`, `model_q8.onnx`, `model_q4.onnx`, `model_q4f16.onnx`, each with its `_data` file),
 * with the config, tokenizer and chat template copied. The graph stays the export's: the attention rewrite happens
 * when a worker loads it.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ModelError, ModelErrorKind } from './model-error';
import { assertDirectory, findGraph, GraphDtype } from './model-files';
import { Quantize, quantizeOptions } from './model-graph';
import { OnnxModel } from './onnx/onnx-model';
import { OnnxTensor } from './onnx/onnx-tensor';
import { quantizeMatMuls } from './onnx/quantize';
import { toFloat16 } from './onnx/to-float16';

export interface ConvertOptions {
  /** The float type of the output: fp32 keeps the source's, fp16 converts a float32 source. */
  dtype: 'fp32' | 'fp16';
  quantize: Quantize;
  /** Weights per quantization block; null for the default of each kind. */
  quantizeBlockSize: number | null;
  onProgress?: (message: string) => void;
}

export interface ConvertResult {
  graphFile: string;
  dtype: GraphDtype;
  /** Bytes of the written graph and data file, and of the source's. */
  bytes: number;
  sourceBytes: number;
  ms: number;
}

const OUTPUT_NAMES: Record<GraphDtype, string> = {
  fp32: 'model.onnx',
  fp16: 'model_fp16.onnx',
  q8: 'model_q8.onnx',
  q4: 'model_q4.onnx',
  q4f16: 'model_q4f16.onnx',
};

/** Weight files of other formats, which a converted directory does not need. */
const SKIPPED = /\.(onnx|onnx_data|onnx\.data|safetensors|bin|gguf|pt|pth|ckpt)$|^model\.onnx_data/;

export function convertModel(sourceDir: string, outDir: string, options: ConvertOptions): ConvertResult {
  const started = performance.now();
  const progress = options.onProgress ?? (() => undefined);
  assertDirectory(sourceDir);
  // a float source: fp32 if present, else fp16
  let source;
  try {
    source = findGraph(sourceDir, 'fp32');
  } catch {
    source = findGraph(sourceDir, 'fp16');
  }
  let target: GraphDtype;
  if (options.quantize === 'none') target = options.dtype === 'fp16' ? 'fp16' : source.dtype;
  else if (options.quantize === 'q4') target = options.dtype === 'fp16' || source.dtype === 'fp16' ? 'q4f16' : 'q4';
  else if (options.dtype === 'fp16' || source.dtype === 'fp16') {
    throw new ModelError(
      ModelErrorKind.InvalidFile,
      source.path,
      'q8 over float16 has no onnx-community file name: convert the fp32 graph',
    );
  } else target = 'q8';
  if (target === source.dtype) {
    throw new ModelError(ModelErrorKind.InvalidFile, source.path, `the graph is already ${target}: nothing to convert`);
  }

  let model = OnnxModel.read(source.path, readFileSync(source.path), dirname(source.path));
  const sourceBytes = model.weightBytes;
  if (options.dtype === 'fp16' && source.dtype === 'fp32') {
    progress('converting to float16');
    model = toFloat16(model);
  }
  if (options.quantize !== 'none') {
    const settings = quantizeOptions(options.quantize, options.quantizeBlockSize);
    const result = quantizeMatMuls(model, settings);
    if (result.quantized === 0)
      throw new ModelError(
        ModelErrorKind.InvalidFile,
        source.path,
        'no MatMul with a constant float weight to quantize',
      );
    progress(`quantizing ${result.quantized} MatMuls to ${options.quantize} (block ${settings.blockSize})`);
    model = result.model;
  }

  mkdirSync(join(outDir, 'onnx'), { recursive: true });
  if (resolve(outDir) !== resolve(sourceDir)) {
    for (const entry of readdirSync(sourceDir, { withFileTypes: true })) {
      if (entry.isFile() && !SKIPPED.test(entry.name))
        copyFileSync(join(sourceDir, entry.name), join(outDir, entry.name));
    }
  }
  const graphFile = join(outDir, 'onnx', OUTPUT_NAMES[target]);
  const dataFile = `${graphFile}_data`;
  let last = performance.now();
  model.save({
    graphFile,
    dataFile,
    moveToData: (t: OnnxTensor) => t.source.kind !== 'inline' || t.byteLength >= 1024,
    onTensor: (written, total) => {
      if (performance.now() - last < 2000 && written < total) return;
      last = performance.now();
      progress(`${written} of ${total} weights written`);
    },
  });
  const bytes = statSync(graphFile).size + statSync(dataFile).size;
  return { graphFile, dtype: target, bytes, sourceBytes, ms: performance.now() - started };
}
