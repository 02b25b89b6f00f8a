/**
 * Finds the files of an Optimum-style export in a model directory, and measures the weights on disk.
 */
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ModelError, ModelErrorKind } from './model-error';

/** Where Optimum and the onnx-community repositories put the decoder graph, in order of preference. */
const GRAPH_CANDIDATES = ['onnx/model.onnx', 'model.onnx', 'onnx/decoder_model_merged.onnx', 'decoder_model_merged.onnx'];

export function assertDirectory(dir: string): void {
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new ModelError(ModelErrorKind.MissingFile, dir, 'model directory not found');
  }
  if (!stat.isDirectory()) throw new ModelError(ModelErrorKind.InvalidFile, dir, 'not a directory');
}

export function findGraphFile(dir: string): string {
  for (const candidate of GRAPH_CANDIDATES) {
    const path = join(dir, candidate);
    try {
      if (statSync(path).isFile()) return path;
    } catch {
      // try the next layout
    }
  }
  throw new ModelError(ModelErrorKind.MissingFile, join(dir, 'onnx/model.onnx'), `no ONNX graph (looked for ${GRAPH_CANDIDATES.join(', ')})`);
}

/**
 * Bytes of the graph file and its external data (`model.onnx_data`, `model.onnx.data`, `model.onnx_data_1`,
 * ...): what the weights occupy once loaded.
 */
export function weightBytes(graphFile: string): number {
  const dir = dirname(graphFile);
  const name = basename(graphFile);
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isFile() && entry.name.startsWith(name)) total += statSync(join(dir, entry.name)).size;
  }
  return total;
}
