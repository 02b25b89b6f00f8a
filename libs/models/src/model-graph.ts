/**
 * Prepares the graph a session is created from: picks the graph file for the requested precision, quantizes its
 * MatMuls at load (`quantize`), rewrites its attention (onnx/fuse-attention.ts), and keeps what is costly to
 * compute in the graph cache (graph-cache.ts): a quantized graph and its weights, and the verdict of the check
 * that the rewritten graph agrees with the export. Weights never pass through a protobuf message: external data
 * stays in its file, so models over 2 GiB take the same path as small ones.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { GraphCache } from './graph-cache';
import { ModelError, ModelErrorKind } from './model-error';
import { DtypeChoice, findGraph, GraphDtype, GraphFile } from './model-files';
import { fuseAttention, FuseOptions } from './onnx/fuse-attention';
import { OnnxModel } from './onnx/onnx-model';
import { OnnxTensor, TensorType } from './onnx/onnx-tensor';
import { quantizeMatMuls, QuantizeOptions } from './onnx/quantize';

/** Quantization at load: none, or weight-only int8 / int4 MatMuls. */
export type Quantize = 'none' | 'q8' | 'q4';
export const QUANTIZE_CHOICES: readonly Quantize[] = ['none', 'q8', 'q4'];

/** Quantization methods of TGI's `--quantize` that need GPU kernels for weights quantized ahead of time. */
const TGI_METHODS = [
  'awq',
  'compressed-tensors',
  'eetq',
  'exl2',
  'gptq',
  'marlin',
  'bitsandbytes',
  'bitsandbytes-nf4',
  'bitsandbytes-fp4',
  'fp8',
];

/** Parses a `--quantize` value or a registry's `quantize` field; throws an error whose message says what is accepted. */
export function parseQuantize(raw: string): Quantize {
  const value = raw.trim().toLowerCase();
  if (value === '' || value === 'none') return 'none';
  if (value === 'q8' || value === 'q4') return value;
  if (TGI_METHODS.includes(value)) {
    throw new Error(
      `"${raw}" is one of TGI's methods for weights quantized ahead of time on a GPU, which ONNX Runtime does not run: ` +
        'quantize at load with q8 or q4, or serve an ONNX export that is already quantized (--dtype q8, q4 or q4f16)',
    );
  }
  throw new Error(`"${raw}" is not a quantization: use none, q8 or q4`);
}

/** How the weights are held once loaded: the graph file's precision, or the quantization applied to it. */
export type WeightDtype = GraphDtype | 'q8f16';

export interface GraphOptions {
  dtype: DtypeChoice;
  quantize: Quantize;
  /** Weights per quantization block along K (a power of two, at least 16); null for the default of each kind. */
  quantizeBlockSize: number | null;
  fuseAttention: boolean;
  /** Where prepared graphs are kept (graph-cache.ts). */
  cacheDir: string;
  /** Progress of long steps (hashing, quantizing), for logs. */
  onProgress?: (message: string) => void;
  /** The ONNX Runtime version cache entries are keyed by: the installed one unless a test says otherwise. */
  runtimeVersion?: string;
}

/** A graph ready for ONNX Runtime: its bytes, and the directory its external data is resolved against. */
export interface GraphBytes {
  bytes: Uint8Array;
  dataDir: string;
}

export interface Verdict {
  ok: boolean;
  /** The largest logit difference seen, and the bound it was held to. */
  maxDiff: number;
  tolerance: number;
  checkedAt: string;
}

export interface PreparedGraph {
  source: GraphFile;
  /** The graph to serve: rewritten when `fused`. */
  graph: GraphBytes;
  /** The graph as exported (quantized alike) while the rewrite has not been checked against it yet; else null. */
  reference: GraphBytes | null;
  fused: boolean;
  /** Why the attention is not rewritten (null when it is, or when the rewrite is off). */
  fusionSkipped: string | null;
  quantize: Quantize;
  dtype: WeightDtype;
  /** The element type the KV cache is declared with. */
  kvType: 'float32' | 'float16';
  /** The graph served, its structure only (no weights read): what the memory estimate measures. */
  model: OnnxModel;
  /** Persists the check's verdict, so the next load skips the check (or the rewrite, if it failed). */
  recordVerdict(verdict: Verdict): void;
  /** Wall time of each step that ran, in milliseconds. */
  timings: Record<string, number>;
  /** The cache key of the content the graph came from (the source's files, the options): for derived entries. */
  contentKey: string;
}

/**
 * The quantizer's settings for each choice. Accuracy level 4 runs the products in int8 (see onnx/quantize.ts).
 * Both kinds store a zero point per block: on the demo models' goldens, asymmetric q8 kept demo-small's greedy
 * output over 16 tokens on 10 of 10 prompts where llama.cpp's symmetric Q8_0 scheme kept 7, at the same speed.
 */
export function quantizeOptions(quantize: Exclude<Quantize, 'none'>, blockSize: number | null): QuantizeOptions {
  return quantize === 'q8'
    ? { bits: 8, blockSize: blockSize ?? DEFAULT_BLOCK_SIZE.q8, symmetric: false, accuracyLevel: 4 }
    : {
        bits: 4,
        blockSize: blockSize ?? DEFAULT_BLOCK_SIZE.q4,
        symmetric: false,
        accuracyLevel: 4,
        // as llama.cpp's Q4_K_M keeps its output tensor at 6 bits: on demo-small, q4 with a q8 head measured a
        // held-out perplexity of +2.0 % over fp32 in 19.7 MB, against +3.5 % in 18.6 MB with a q4 head
        head: { bits: 8, blockSize: DEFAULT_BLOCK_SIZE.q8 },
      };
}

/**
 * Weights per block when none is asked for. q4 uses 32, as llama.cpp's Q4 formats do: its error grows quickly with
 * the block (demo-small's held-out perplexity: +3.5 % at 32, +4.3 % at 64). q8 uses 128: 8 bits lose nothing
 * measurable in larger blocks, and MLAS's int8 kernel ran a 500M-parameter model 1.16 times faster at batch 1 and
 * 1.42 times at batch 32 with 128 than with 32, on this 2-core CPU.
 */
export const DEFAULT_BLOCK_SIZE = { q8: 128, q4: 32 } as const;

interface EntryMeta {
  source: string;
  quantize: Quantize;
  fused: boolean;
  fusionSkipped: string | null;
  quantized: number;
  verdict: Verdict | null;
  buildMs: number;
}

export const ORT_VERSION = readOrtVersion();

function readOrtVersion(): string {
  try {
    return (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string })
      .version;
  } catch {
    return 'unknown';
  }
}

/** Files a graph reads its external data from. */
function dataFiles(model: OnnxModel): string[] {
  const files = new Set<string>();
  for (const t of model.initializers.values()) if (t.source.kind === 'external') files.add(t.source.file);
  return [...files].sort();
}

function readModel(file: string): OnnxModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new ModelError(ModelErrorKind.MissingFile, file, `cannot read: ${(err as Error).message}`);
  }
  try {
    return OnnxModel.read(file, bytes, dirname(file));
  } catch (err) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, `not an ONNX model: ${(err as Error).message}`);
  }
}

function kvTypeOf(model: OnnxModel): 'float32' | 'float16' {
  const past = model.inputs.find((i) => i.name.startsWith('past_key_values.'));
  return past?.type === TensorType.Float16 ? 'float16' : 'float32';
}

export function prepareGraph(dir: string, shape: FuseOptions, options: GraphOptions): PreparedGraph {
  const timings: Record<string, number> = {};
  const time = <T>(step: string, run: () => T): T => {
    const started = performance.now();
    try {
      return run();
    } finally {
      timings[step] = (timings[step] ?? 0) + performance.now() - started;
    }
  };
  const progress = options.onProgress ?? (() => undefined);
  const source = findGraph(dir, options.dtype);
  const alreadyQuantized = source.dtype === 'q8' || source.dtype === 'q4' || source.dtype === 'q4f16';
  if (options.quantize !== 'none' && alreadyQuantized) {
    progress(`${source.path} is already quantized (${source.dtype}): quantize=${options.quantize} does not apply`);
  }
  const quantize: Quantize = alreadyQuantized ? 'none' : options.quantize;
  const dtype: WeightDtype =
    quantize === 'none' ? source.dtype : source.dtype === 'fp16' ? (quantize === 'q4' ? 'q4f16' : 'q8f16') : quantize;
  const model = time('read', () => readModel(source.path));
  const kvType = kvTypeOf(model);
  const cache = new GraphCache(options.cacheDir);
  const ort = options.runtimeVersion ?? ORT_VERSION;
  const fingerprint = (file: string) =>
    cache.fingerprint(file, (bytes) => {
      if (bytes > 256n << 20n) progress(`hashing ${file} (once; the hash is kept in ${cache.dir})`);
    });

  if (quantize === 'none') {
    // The rewrite alone takes milliseconds: it runs at every load, and only its verdict is kept, keyed by the
    // graph file (the rewrite does not depend on the weights' values).
    const key = cache.key({ kind: 'verdict', graph: time('hash', () => fingerprint(source.path)), shape, ort });
    const meta = cache.read<EntryMeta>(key);
    const exported = (): GraphBytes => ({ bytes: readFileSync(source.path), dataDir: dirname(source.path) });
    const base = { source, quantize, dtype, kvType, timings, contentKey: key };
    const asExported = (fusionSkipped: string | null): PreparedGraph => ({
      ...base,
      model,
      graph: exported(),
      reference: null,
      fused: false,
      fusionSkipped,
      recordVerdict: () => undefined,
    });
    if (!options.fuseAttention) return asExported(null);
    if (meta?.verdict && !meta.verdict.ok) return asExported(failedCheck(meta.verdict));
    const fused = time('rewrite', () => fuseAttention(model, shape));
    if (!fused.fused) return asExported(fused.reason);
    return {
      ...base,
      model: fused.model,
      graph: { bytes: time('rewrite', () => fused.model.toBytes()), dataDir: dirname(source.path) },
      reference: meta?.verdict?.ok ? null : exported(),
      fused: true,
      fusionSkipped: null,
      recordVerdict: (verdict) =>
        cache.update<EntryMeta>(key, {
          source: source.path,
          quantize,
          fused: true,
          fusionSkipped: null,
          quantized: 0,
          verdict,
          buildMs: 0,
        }),
    };
  }

  const key = time('hash', () =>
    cache.key({
      kind: 'quantized',
      graph: fingerprint(source.path),
      data: dataFiles(model).map((f) => fingerprint(f)),
      quantize: quantizeOptions(quantize, options.quantizeBlockSize),
      fuse: options.fuseAttention,
      shape,
      ort,
    }),
  );
  const entry = cache.entryDir(key);
  let meta = cache.read<EntryMeta>(key);
  if (meta) progress(`quantized graph read from the cache (${entry})`);
  else {
    meta = time('quantize', () =>
      cache.create<EntryMeta>(key, (staging) =>
        buildQuantized(model, source, quantize, options, shape, staging, progress),
      ),
    );
  }
  const entryModel = time('read', () => readModel(join(entry, meta.fused ? 'model.onnx' : 'reference.onnx')));
  const graphFile = (name: string): GraphBytes => ({ bytes: readFileSync(join(entry, name)), dataDir: entry });
  const base = { source, quantize, dtype, kvType: kvTypeOf(entryModel), timings, model: entryModel, contentKey: key };
  if (!meta.fused || (meta.verdict && !meta.verdict.ok)) {
    const skipped = meta.verdict && !meta.verdict.ok ? failedCheck(meta.verdict) : meta.fusionSkipped;
    return {
      ...base,
      graph: graphFile('reference.onnx'),
      reference: null,
      fused: false,
      fusionSkipped: skipped,
      recordVerdict: () => undefined,
    };
  }
  const built = meta;
  return {
    ...base,
    graph: graphFile('model.onnx'),
    reference: meta.verdict?.ok ? null : graphFile('reference.onnx'),
    fused: true,
    fusionSkipped: null,
    recordVerdict: (verdict) => cache.update<EntryMeta>(key, { ...built, verdict }),
  };
}

function failedCheck(verdict: Verdict): string {
  return `the rewritten graph disagreed with the export when checked (logits differed by ${verdict.maxDiff.toPrecision(3)}, more than ${verdict.tolerance.toPrecision(3)}); serving the export`;
}

/**
 * Writes a cache entry for a quantized model: `reference.onnx` (the export with its MatMuls quantized),
 * `model.onnx_data` (every weight both graphs read, quantized ones included) and, when the attention rewrite
 * matches, `model.onnx` (the rewritten graph, reading the same data file).
 */
function buildQuantized(
  model: OnnxModel,
  source: GraphFile,
  quantize: Exclude<Quantize, 'none'>,
  options: GraphOptions,
  shape: FuseOptions,
  staging: string,
  progress: (message: string) => void,
): EntryMeta {
  const started = performance.now();
  const settings = quantizeOptions(quantize, options.quantizeBlockSize);
  const result = quantizeMatMuls(model, settings);
  if (result.quantized === 0) {
    throw new ModelError(
      ModelErrorKind.InvalidFile,
      source.path,
      `no MatMul with a constant float weight to quantize to ${quantize}`,
    );
  }
  progress(
    `quantizing ${result.quantized} MatMuls of ${source.path} to ${quantize} (block ${settings.blockSize}): ` +
      `${mib(result.bytesBefore)} of weights become ${mib(result.bytesAfter)}`,
  );
  let lastReport = performance.now();
  result.model.save({
    graphFile: join(staging, 'reference.onnx'),
    dataFile: join(staging, 'model.onnx_data'),
    // weights both graphs read go to the shared data file; small constants stay in each graph
    moveToData: (t: OnnxTensor) => t.source.kind !== 'inline' || t.byteLength >= 1024,
    onTensor: (written, total) => {
      if (performance.now() - lastReport < 2000 && written < total) return;
      lastReport = performance.now();
      progress(
        `quantizing: ${written} of ${total} weights written (${((performance.now() - started) / 1000).toFixed(1)} s)`,
      );
    },
  });
  let fused = false;
  let fusionSkipped: string | null = null;
  if (options.fuseAttention) {
    const written = readModel(join(staging, 'reference.onnx'));
    const rewrite = fuseAttention(written, shape);
    if (rewrite.fused) {
      rewrite.model.save({ graphFile: join(staging, 'model.onnx'), dataFile: null });
      fused = true;
    } else fusionSkipped = rewrite.reason;
  }
  const buildMs = performance.now() - started;
  progress(`quantized ${source.path} to ${quantize} in ${(buildMs / 1000).toFixed(1)} s`);
  return { source: source.path, quantize, fused, fusionSkipped, quantized: result.quantized, verdict: null, buildMs };
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
