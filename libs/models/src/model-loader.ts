/**
 * Loads a model directory (config, tokenizer, chat template, ONNX session) into a `LoadedModel`, with the
 * memory estimate the pool budgets by. Every problem with the directory surfaces as a `ModelError` naming the
 * file; nothing else escapes.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ChatTemplate, loadChatTemplate } from './chat-template';
import { DecoderSession, DEFAULT_SESSION_OPTIONS, SessionOptions } from './decoder-session';
import { loadModelConfig, ModelConfig } from './model-config';
import { ModelError, ModelErrorKind } from './model-error';
import { assertDirectory, findGraphFile, weightBytes } from './model-files';
import { loadTokenizer, ModelTokenizer } from './tokenizer';

export interface MemoryEstimate {
  /** The graph and its external data, as on disk. */
  weightBytes: number;
  /** Keys and values of every layer for one token of one sequence. */
  kvBytesPerToken: number;
}

export interface LoadedModel {
  dir: string;
  graphFile: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  chatTemplate: ChatTemplate | null;
  session: DecoderSession;
  memory: MemoryEstimate;
  /** Wall time of the load, for logs and metrics. */
  loadMs: number;
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

export function describeModel(dir: string): ModelDescription {
  assertDirectory(dir);
  const config = loadModelConfig(dir);
  const tokenizer = loadTokenizer(dir);
  const chatTemplate = loadChatTemplate(tokenizer, join(dir, 'tokenizer_config.json'));
  const graphFile = findGraphFile(dir);
  return { dir, graphFile, config, tokenizer, chatTemplate, memory: estimateMemory(config, graphFile, 4) };
}

/** The memory estimate from the config and the graph's size alone (no tokenizer): cheap enough for every placement. */
export function estimateModelMemory(dir: string): MemoryEstimate {
  assertDirectory(dir);
  const graphFile = findGraphFile(dir);
  return estimateMemory(loadModelConfig(dir), graphFile, 4);
}

/** What a model costs in a pool: its weights plus a KV cache for `totalTokens` tokens. */
export function poolBytes(memory: MemoryEstimate, totalTokens: number): number {
  return memory.weightBytes + totalTokens * memory.kvBytesPerToken;
}

export function estimateMemory(config: ModelConfig, graphFile: string, kvBytesPerElement: number): MemoryEstimate {
  return {
    weightBytes: weightBytes(graphFile),
    kvBytesPerToken: 2 * config.numLayers * config.numKvHeads * config.headDim * kvBytesPerElement,
  };
}

export async function loadModel(dir: string, options: Partial<SessionOptions> = {}): Promise<LoadedModel> {
  const started = performance.now();
  const description = describeModel(dir);
  const { config, graphFile } = description;
  let session: DecoderSession;
  try {
    session = await DecoderSession.create(
      graphFile,
      {
        numLayers: config.numLayers,
        numHeads: config.numAttentionHeads,
        kvHeads: config.numKvHeads,
        headDim: config.headDim,
        hiddenSize: config.hiddenSize,
      },
      { ...DEFAULT_SESSION_OPTIONS, ...options },
    );
  } catch (err) {
    if (err instanceof ModelError) throw err;
    throw new ModelError(ModelErrorKind.SessionFailed, graphFile, (err as Error).message);
  }
  const kvBytesPerElement = session.signature.kvDtype === 'float16' ? 2 : 4;
  return {
    ...description,
    session,
    memory: estimateMemory(config, graphFile, kvBytesPerElement),
    loadMs: performance.now() - started,
    release: () => session.release(),
  };
}
