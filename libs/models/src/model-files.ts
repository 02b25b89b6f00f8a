/**
 * Finds the files of an Optimum-style export in a model directory, and measures the weights on disk. A directory
 * may hold the graph in several precisions (the onnx-community layout: `model.onnx`, `model_fp16.onnx`,
 * `model_q4.onnx`, ...); `dtype` picks one, and `auto` takes the most precise that is present.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ModelError, ModelErrorKind } from './model-error';

/** The precision of the weights in a graph file, as the file's name declares it. */
export type GraphDtype = 'fp32' | 'fp16' | 'q8' | 'q4' | 'q4f16';
export type DtypeChoice = GraphDtype | 'auto';
export const GRAPH_DTYPES: readonly GraphDtype[] = ['fp32', 'fp16', 'q8', 'q4', 'q4f16'];

/** File names per precision, in order of preference (Optimum's, then the onnx-community and transformers.js ones). */
const GRAPH_NAMES: Record<GraphDtype, string[]> = {
  fp32: ['model.onnx', 'decoder_model_merged.onnx'],
  fp16: ['model_fp16.onnx', 'decoder_model_merged_fp16.onnx'],
  q8: [
    'model_q8.onnx',
    'model_int8.onnx',
    'model_quantized.onnx',
    'model_uint8.onnx',
    'decoder_model_merged_quantized.onnx',
  ],
  q4: ['model_q4.onnx'],
  q4f16: ['model_q4f16.onnx'],
};
const GRAPH_DIRS = ['onnx', '.'];

export interface GraphFile {
  path: string;
  dtype: GraphDtype;
}

export function assertDirectory(dir: string): void {
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new ModelError(ModelErrorKind.MissingFile, dir, 'model directory not found');
  }
  if (!stat.isDirectory()) throw new ModelError(ModelErrorKind.InvalidFile, dir, 'not a directory');
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The graph file for `dtype`; with `auto`, the first precision in fp32, fp16, q8, q4, q4f16 order that exists. */
export function findGraph(dir: string, dtype: DtypeChoice = 'auto'): GraphFile {
  const wanted = dtype === 'auto' ? GRAPH_DTYPES : [dtype];
  for (const d of wanted) {
    for (const sub of GRAPH_DIRS) {
      for (const name of GRAPH_NAMES[d]) {
        const path = join(dir, sub, name);
        if (isFile(path)) return { path: sub === '.' ? join(dir, name) : path, dtype: d };
      }
    }
  }
  const looked = wanted.flatMap((d) => GRAPH_NAMES[d].map((n) => `onnx/${n}`)).join(', ');
  const present = GRAPH_DTYPES.filter(
    (d) => d !== dtype && GRAPH_NAMES[d].some((n) => GRAPH_DIRS.some((s) => isFile(join(dir, s, n)))),
  );
  const hint = present.length > 0 ? `; the directory has ${present.join(', ')}` : '';
  throw new ModelError(
    ModelErrorKind.MissingFile,
    join(dir, 'onnx', GRAPH_NAMES[wanted[0]][0]),
    `no ${dtype === 'auto' ? '' : `${dtype} `}ONNX graph (looked for ${looked})${hint}`,
  );
}

/**
 * Bytes of the graph file and its external data (`model.onnx_data`, `model.onnx.data`, `model.onnx_data_1`,
 * ...): what the weights occupy on disk.
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

/**
 * Whether a model's weights were in the page cache: `page_cache` when at least 90 % of its graph and data files'
 * pages were resident, `cold` when not, `unknown` where util-linux's `fincore` (mincore(2) for a shell; Node has
 * no binding) is missing. Labels load times by where the bytes came from.
 */
export function pageCacheTier(dir: string, dtype: DtypeChoice = 'auto'): 'page_cache' | 'cold' | 'unknown' {
  const graph = findGraph(dir, dtype).path;
  const files = readdirSync(dirname(graph), { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.startsWith(basename(graph)))
    .map((e) => join(dirname(graph), e.name));
  let out: string;
  try {
    // arguments, not a shell: a path cannot be read as anything else
    out = execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', ...files], {
      encoding: 'utf8',
      timeout: 2000,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return 'unknown';
  }
  let resident = 0;
  let size = 0;
  for (const line of out.trim().split('\n')) {
    const [res, bytes] = line.trim().split(/\s+/).map(Number);
    if (!Number.isFinite(res) || !Number.isFinite(bytes)) return 'unknown';
    resident += res;
    size += bytes;
  }
  return size > 0 && resident >= 0.9 * size ? 'page_cache' : 'cold';
}
