/**
 * What a model costs in memory, the number the pool budgets by: its weights as they will be resident (after
 * quantization, and on a CPU with float16 weights widened to float32, which ONNX Runtime does at session
 * creation), its key/value bytes per token in the cache's own element type, and the session's working memory.
 * `predictWeights` computes the first from the graph's structure alone, before anything is loaded.
 */
import { readFileSync, statSync } from 'node:fs';
import { freemem } from 'node:os';
import { dirname } from 'node:path';
import type { ExecutionProvider } from './decoder-session';
import type { ModelConfig } from './model-config';
import type { GraphFile } from './model-files';
import { Quantize, quantizeOptions } from './model-graph';
import { OnnxModel } from './onnx/onnx-model';
import { TensorType } from './onnx/onnx-tensor';
import { quantizeMatMuls } from './onnx/quantize';

export interface MemoryEstimate {
  /** The weights as resident once the session exists. */
  weightBytes: number;
  /** What a session holds beyond its weights once it has run: ONNX Runtime's arena and its kernels' workspaces. */
  sessionBytes: number;
  /** Keys and values of every layer for one token of one sequence. */
  kvBytesPerToken: number;
  /** What a prefill's activations hold per token: hidden states, projections, the MLP's inner width (float32). */
  activationBytesPerToken: number;
  /** What a prefill's attention scores hold per token squared of one row (heads × float32 × the copies alive). */
  scoreBytesPerTokenSquared: number;
  /** The longest row a prefill can hold: the model's positions. */
  maxPositions: number;
}

/** What the pool budgets a model for, beyond its weights: its KV cache and its largest prefill. */
export interface PoolBudgets {
  /** `--max-batch-total-tokens`: the KV cache's tokens. */
  totalTokens: number;
  /** `--max-batch-prefill-tokens`: the most tokens one prefill call holds. */
  prefillTokens: number;
}

/**
 * The copies of a row's scores the rewritten graph holds at once in a prefill (scores, the masked sum, the softmax
 * and its slices), and ONNX Runtime's arena, which grows in doublings and keeps its peak. Fitted to the resident
 * growth of single prefills, estimate against measured: demo-small 1 × 2048 tokens 382 / 359 MB, 1 × 512 1.0,
 * 32 × 128 1.9 (over: no merged projections there); the 500M-parameter model in q8 1 × 2048 1.21, 4 × 512 1.1,
 * 32 × 64 0.9. Long rows dominate the worst case, and their scores are what these two numbers size.
 */
const SCORE_COPIES = 2.4;
const ARENA_GROWTH = 1.5;

/**
 * The session's working memory at its peak: the largest prefill the scheduler admits (`prefillTokens`, in rows of
 * at most the model's positions). ONNX Runtime's arena keeps that peak once reached, so the pool counts it.
 */
export function workingBytes(memory: MemoryEstimate, prefillTokens: number): number {
  const row = Math.min(prefillTokens, memory.maxPositions);
  const fullRows = Math.floor(prefillTokens / row);
  const rest = prefillTokens - fullRows * row;
  const squared = fullRows * row * row + rest * rest;
  return Math.round(
    ARENA_GROWTH * (prefillTokens * memory.activationBytesPerToken + squared * memory.scoreBytesPerTokenSquared),
  );
}

/** What a model costs in a pool: its weights and session, a KV cache of `totalTokens` tokens and its largest prefill. */
export function poolBytes(memory: MemoryEstimate, budgets: PoolBudgets): number {
  return (
    memory.weightBytes +
    memory.sessionBytes +
    budgets.totalTokens * memory.kvBytesPerToken +
    workingBytes(memory, budgets.prefillTokens)
  );
}

/**
 * A session's fixed cost after its first run (the load's warm-up): measured at 0 to 5 MB over demo-small's weights
 * in fp32, q8 and q4, the int8 kernels' workspaces being the larger part.
 */
const SESSION_BYTES = 4 * 2 ** 20;

export function estimateMemory(
  config: ModelConfig,
  residentWeightBytes: number,
  kvDtype: 'float32' | 'float16',
): MemoryEstimate {
  const { hiddenSize, intermediateSize, numAttentionHeads, numKvHeads, headDim } = config;
  return {
    weightBytes: residentWeightBytes,
    sessionBytes: SESSION_BYTES,
    kvBytesPerToken: 2 * config.numLayers * numKvHeads * headDim * (kvDtype === 'float16' ? 2 : 4),
    // hidden states; the projections and the MLP's width twice (a quantized graph's merged products and their splits)
    activationBytesPerToken:
      4 * (4 * hiddenSize + 2 * (numAttentionHeads + 2 * numKvHeads) * headDim + 5 * intermediateSize),
    scoreBytesPerTokenSquared: 4 * numAttentionHeads * SCORE_COPIES,
    maxPositions: config.maxPositions,
  };
}

export interface PredictedWeights {
  residentBytes: number;
  kvDtype: 'float32' | 'float16';
}

/**
 * What ONNX Runtime's CPU MatMulNBits keeps per block beyond the stored codes, scales and zero points: its packed
 * copy of each block's scale and the block sums its int8 kernel precomputes (about 8 bytes; measured on a
 * 500M-parameter model, where q8 and q4 both held 137 to 141 MiB more than their stored weights over 15M blocks).
 */
const MATMUL_NBITS_BYTES_PER_BLOCK = 8;

/**
 * What a float16 initializer holds on a CPU, per stored byte: its float32 widening (2) and, while ONNX Runtime
 * builds the session from the export, a part of the float16 original (measured: 2.31 on demo-small's fp16 export,
 * 55 MB for 23.4 MB of weights, and 2.31 on a 500M-parameter one, 2,372 MB for 1,026 MB); a session read from the
 * cached optimised graph holds about 2.05 (demo-small). Between the two, within 10 % of either.
 */
const FLOAT16_ON_CPU_FACTOR = 2.15;

/**
 * The bytes `model`'s weights hold once a session exists: as stored, except that on a CPU float16 initializers
 * are widened to float32 (ONNX Runtime casts them at session creation for the kernels that lack float16), and a
 * MatMulNBits adds its per-block working copy. An estimate, not an accounting: it is held to within 15 % of the
 * resident growth of each kind of model in model-memory.spec.ts.
 */
export function residentWeightBytes(model: OnnxModel, executionProvider: ExecutionProvider): number {
  let bytes = 0;
  for (const t of model.initializers.values()) {
    bytes +=
      t.type === TensorType.Float16 && executionProvider === 'cpu'
        ? FLOAT16_ON_CPU_FACTOR * t.byteLength
        : t.byteLength;
  }
  if (executionProvider === 'cpu') {
    for (const node of model.nodes) {
      if (node.opType !== 'MatMulNBits') continue;
      const K = node.intAttribute('K') ?? 0;
      const N = node.intAttribute('N') ?? 0;
      const block = node.intAttribute('block_size') ?? 32;
      bytes += N * Math.ceil(K / block) * MATMUL_NBITS_BYTES_PER_BLOCK;
    }
  }
  return Math.round(bytes);
}

const predictions = new Map<string, PredictedWeights>();

/**
 * The resident weight bytes of `graph` once loaded with `quantize`, from its structure alone: the quantizer is
 * run on the graph without computing any codes (they are computed only when a model is saved), and the result is
 * measured as a loaded one is. Memoized per file and options.
 */
export function predictWeights(
  graph: GraphFile,
  options: { quantize: Quantize; quantizeBlockSize: number | null; executionProvider: ExecutionProvider },
): PredictedWeights {
  const stat = statSync(graph.path);
  const memo = `${graph.path}\0${stat.size}\0${stat.mtimeMs}\0${options.quantize}\0${options.quantizeBlockSize}\0${options.executionProvider}`;
  const known = predictions.get(memo);
  if (known) return known;
  let model = OnnxModel.read(graph.path, readFileSync(graph.path), dirname(graph.path));
  if (options.quantize !== 'none' && (graph.dtype === 'fp32' || graph.dtype === 'fp16')) {
    model = quantizeMatMuls(model, quantizeOptions(options.quantize, options.quantizeBlockSize)).model;
  }
  const past = model.inputs.find((i) => i.name.startsWith('past_key_values.'));
  const prediction: PredictedWeights = {
    residentBytes: residentWeightBytes(model, options.executionProvider),
    kvDtype: past?.type === TensorType.Float16 ? 'float16' : 'float32',
  };
  predictions.set(memo, prediction);
  return prediction;
}

/**
 * The host memory available for new allocations: Linux's MemAvailable (free memory plus the page cache and other
 * memory the kernel can reclaim), or Node's free memory elsewhere.
 */
export function availableMemoryBytes(): number {
  try {
    const kib = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {
    // not Linux
  }
  return freemem();
}
