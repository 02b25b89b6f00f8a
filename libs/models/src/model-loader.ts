/**
 * Loads a model directory (config, tokenizer, chat template, ONNX session) into a `LoadedModel`, with what the
 * model is (precision, quantization, attention path) and the memory estimate the pool budgets by. Every problem
 * with the directory surfaces as a `ModelError` naming the file; nothing else escapes.
 */
import { arch, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ChatTemplate, loadChatTemplate } from './chat-template';
import { DecoderSession, DEFAULT_SESSION_OPTIONS, ExecutionProvider, SessionOptions } from './decoder-session';
import { defaultCacheDir, GraphCache } from './graph-cache';
import { estimateMemory, MemoryEstimate, predictWeights, residentWeightBytes } from './memory-estimate';
import { loadModelConfig, ModelConfig } from './model-config';
import { ModelError, ModelErrorKind } from './model-error';
import { assertDirectory, DtypeChoice, findGraph } from './model-files';
import { GraphOptions, ORT_VERSION, prepareGraph, PreparedGraph, Quantize, WeightDtype } from './model-graph';
import { checkRewrite } from './rewrite-check';
import { loadTokenizer, ModelTokenizer } from './tokenizer';

export type { MemoryEstimate } from './memory-estimate';
export { poolBytes } from './memory-estimate';

export interface LoadOptions extends SessionOptions, Omit<GraphOptions, 'onProgress'> {
  /** Progress of long steps and the load's summary, for logs. */
  onProgress?: (message: string) => void;
  /** Keep ONNX Runtime's optimised graph and prepacked weights in the graph cache (see `openSession`). */
  optimizedCache: boolean;
}

export const DEFAULT_LOAD_OPTIONS: LoadOptions = {
  ...DEFAULT_SESSION_OPTIONS,
  dtype: 'auto',
  quantize: 'none',
  quantizeBlockSize: null,
  fuseAttention: true,
  cacheDir: defaultCacheDir(),
  optimizedCache: true,
};

/** What was loaded: the labels of `switchyard_model_info` and of the worker's heartbeat. */
export interface ModelInfo {
  graphFile: string;
  /** The weights' precision as served: fp32, fp16, q8, q4, q4f16, q8f16. */
  dtype: WeightDtype;
  /** The quantization applied at load. */
  quantize: Quantize;
  /** `fused`: the attention rewrite is in force; `exported`: the graph is served as exported. */
  attention: 'fused' | 'exported';
  kvDtype: 'float32' | 'float16';
  /** Why the attention is not rewritten (null when it is, or when the rewrite was turned off). */
  fusionSkipped: string | null;
  /** ONNX Runtime's optimised graph: read from the cache, written to it at this load, or not used. */
  optimizedGraph: 'read' | 'written' | 'none';
}

export interface LoadedModel {
  dir: string;
  graphFile: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  chatTemplate: ChatTemplate | null;
  session: DecoderSession;
  info: ModelInfo;
  memory: MemoryEstimate;
  /** Wall time of the load, for logs and metrics, and of each of its steps. */
  loadMs: number;
  timings: Record<string, number>;
  release(): Promise<void>;
}

/** Everything but the ONNX session: cheap, so the API can validate a directory before registering it. */
export interface ModelDescription {
  dir: string;
  graphFile: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  chatTemplate: ChatTemplate | null;
  memory: MemoryEstimate;
}

/** What decides a model's memory before it loads. */
export interface EstimateOptions {
  dtype: DtypeChoice;
  quantize: Quantize;
  quantizeBlockSize: number | null;
  executionProvider: ExecutionProvider;
}

const DEFAULT_ESTIMATE: EstimateOptions = {
  dtype: 'auto',
  quantize: 'none',
  quantizeBlockSize: null,
  executionProvider: 'cpu',
};

export function describeModel(dir: string, options: Partial<EstimateOptions> = {}): ModelDescription {
  assertDirectory(dir);
  const config = loadModelConfig(dir);
  const tokenizer = loadTokenizer(dir);
  const chatTemplate = loadChatTemplate(tokenizer, join(dir, 'tokenizer_config.json'));
  const memory = estimateModelMemory(dir, options, config);
  return { dir, graphFile: memory.graphFile, config, tokenizer, chatTemplate, memory };
}

/**
 * The memory estimate from the config and the graph's structure (no weights are read, no session is made): cheap
 * enough for every placement decision.
 */
export function estimateModelMemory(
  dir: string,
  options: Partial<EstimateOptions> = {},
  config = loadModelConfig(dir),
): MemoryEstimate & { graphFile: string } {
  assertDirectory(dir);
  const o = { ...DEFAULT_ESTIMATE, ...options };
  const graph = findGraph(dir, o.dtype);
  const predicted = predictWeights(graph, o);
  return { ...estimateMemory(config, predicted.residentBytes, predicted.kvDtype), graphFile: graph.path };
}

/** Tolerance of the load-time check of the attention rewrite, relative to the largest logit. */
function checkTolerance(prepared: PreparedGraph): number {
  return prepared.dtype === 'fp32' ? 1e-3 : 3e-2;
}

export async function loadModel(dir: string, options: Partial<LoadOptions> = {}): Promise<LoadedModel> {
  const started = performance.now();
  const o: LoadOptions = { ...DEFAULT_LOAD_OPTIONS, ...options };
  assertDirectory(dir);
  const config = loadModelConfig(dir);
  const tokenizer = loadTokenizer(dir);
  const chatTemplate = loadChatTemplate(tokenizer, join(dir, 'tokenizer_config.json'));
  const shape = {
    numLayers: config.numLayers,
    numHeads: config.numAttentionHeads,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    hiddenSize: config.hiddenSize,
  };
  let prepared: PreparedGraph;
  try {
    prepared = prepareGraph(dir, shape, o);
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(ModelErrorKind.InvalidFile, dir, `cannot prepare the graph: ${(err as Error).message}`);
  }
  const file = prepared.source.path;
  const sessionShape = { numLayers: config.numLayers, kvHeads: config.numKvHeads, headDim: config.headDim };
  const timings = prepared.timings;
  const time = async <T>(step: string, run: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      timings[step] = (timings[step] ?? 0) + performance.now() - t0;
    }
  };
  const opened = await time('session', () => openSession(prepared, file, sessionShape, o));
  let session = opened.session;
  let fused = prepared.fused;
  let fusionSkipped = prepared.fusionSkipped;
  if (fused && prepared.reference) {
    // First load of this graph with these options: check the rewrite against the export before serving it.
    const reference = await time('check', () => DecoderSession.create(prepared.reference!, file, sessionShape, o));
    let verdict;
    try {
      verdict = await time('check', () => checkRewrite(session, reference, config.vocabSize, checkTolerance(prepared)));
    } catch (err) {
      verdict = { ok: false, maxDiff: Infinity, tolerance: 0, error: (err as Error).message };
    }
    prepared.recordVerdict({
      ok: verdict.ok,
      maxDiff: verdict.maxDiff,
      tolerance: verdict.tolerance,
      checkedAt: new Date().toISOString(),
    });
    if (verdict.ok) {
      o.onProgress?.(
        `attention rewrite checked against the export: logits within ${verdict.maxDiff.toPrecision(2)} (bound ${verdict.tolerance.toPrecision(2)})`,
      );
      await reference.release();
    } else {
      fusionSkipped = `the rewritten graph disagreed with the export (logits differed by ${verdict.maxDiff.toPrecision(3)}, more than ${verdict.tolerance.toPrecision(3)}); serving the export`;
      o.onProgress?.(`WARNING: ${fusionSkipped}`);
      await session.release();
      session = reference;
      fused = false;
    }
  }
  // One token through the session: ONNX Runtime's first run initializes what later ones reuse, and a request
  // should not pay for it.
  await time('warmup', () => warmUp(session));
  const info: ModelInfo = {
    graphFile: file,
    dtype: prepared.dtype,
    quantize: prepared.quantize,
    attention: fused ? 'fused' : 'exported',
    kvDtype: session.signature.kvDtype,
    fusionSkipped,
    optimizedGraph: fused === prepared.fused ? opened.optimized : 'none',
  };
  const residentBytes = residentWeightBytes(prepared.model, o.executionProvider);
  return {
    dir,
    graphFile: file,
    config,
    tokenizer,
    chatTemplate,
    session,
    info,
    memory: estimateMemory(config, residentBytes, session.signature.kvDtype),
    loadMs: performance.now() - started,
    timings,
    release: () => session.release(),
  };
}

/** A one-token forward call, in the session's own layout. */
async function warmUp(session: DecoderSession): Promise<void> {
  const one = BigInt64Array.of(0n);
  await session.forward({
    batchSize: 1,
    seqLen: 1,
    pastLen: 0,
    inputIds: one,
    positionIds: BigInt64Array.of(0n),
    attentionMask: BigInt64Array.of(1n),
    cacheLengths: BigInt64Array.of(0n),
    logitsIndex: BigInt64Array.of(0n),
    logitsPerRow: 1,
    past: null,
    skipLogits: true,
  });
}

/** A CPU's identity for cached prepacked weights, whose layout depends on the instruction set. */
const CPU = `${arch()} ${cpus()[0]?.model ?? 'unknown'}`;

/**
 * The session for a prepared graph. Once the graph is final (its rewrite checked), ONNX Runtime's own optimised
 * form of it is cached too, with the weights' prepacked layouts: later loads read it with no optimisation and map
 * the prepacked weights instead of packing them again (a 500M-parameter fp32 model's load: 1.28 s instead of 3.2 to
 * 3.5 s; demo-small's: 100 ms instead of 134). The first load writes it, which takes longer once, and the cache
 * holds the weights twice (raw and prepacked).
 */
async function openSession(
  prepared: PreparedGraph,
  file: string,
  shape: { numLayers: number; kvHeads: number; headDim: number },
  o: LoadOptions,
): Promise<{ session: DecoderSession; optimized: ModelInfo['optimizedGraph'] }> {
  if (prepared.reference || !o.optimizedCache) {
    return { session: await DecoderSession.create(prepared.graph, file, shape, o), optimized: 'none' };
  }
  // ONNX Runtime (1.30) serialises MatMulNBits' prepacked weights in a form its own reader gets wrong: a session read
  // back from them computes garbage (every greedy token 0 on demo-small q8 and q4). Their graphs are kept without
  // prepacked weights, which MatMulNBits packs again at each load (a 500M-parameter q8 model: 0.7 s against 0.8 s).
  const prepacked = !prepared.model.nodes.some((node) => node.opType === 'MatMulNBits');
  const cache = new GraphCache(o.cacheDir);
  const key = cache.key({
    kind: 'optimized',
    prepacked,
    from: prepared.contentKey,
    fused: prepared.fused,
    provider: o.executionProvider,
    cpu: CPU,
    ort: o.runtimeVersion ?? ORT_VERSION,
  });
  const graphFile = join(cache.entryDir(key), 'optimized.onnx');
  if (cache.read(key)) {
    try {
      return { session: await DecoderSession.createOptimized(graphFile, file, shape, o), optimized: 'read' };
    } catch (err) {
      o.onProgress?.(
        `the cached optimised graph ${graphFile} cannot be read (${(err as Error).message}): building it again`,
      );
      cache.remove(key);
    }
  }
  const staging = cache.stage<{ source: string; createdAt: string }>(key);
  try {
    const session = await DecoderSession.create(prepared.graph, file, shape, o, {
      file: join(staging.dir, 'optimized.onnx'),
      prepacked,
    });
    staging.commit({ source: file, createdAt: new Date().toISOString() });
    return { session, optimized: 'written' };
  } catch (err) {
    staging.abort();
    throw err;
  }
}
