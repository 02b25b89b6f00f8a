/**
 * Reads a decoder's config.json (and generation_config.json) into the few numbers serving needs. Field names
 * differ across architectures (Llama/Qwen2/Mistral use `num_hidden_layers`, GPT-2 uses `n_layer`, ...), so
 * each value is looked up under its known aliases.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError, ModelErrorKind } from './model-error';

export interface ModelConfig {
  modelType: string;
  numLayers: number;
  numAttentionHeads: number;
  /** Key/value heads; equals numAttentionHeads for models without grouped-query attention. */
  numKvHeads: number;
  headDim: number;
  hiddenSize: number;
  /** The MLP's inner width (4 × hidden where the config does not say): what a token's activations take. */
  intermediateSize: number;
  vocabSize: number;
  /** Generation stops on any of these ids. */
  eosTokenIds: number[];
  /** The longest sequence (prompt plus generated) the model's positions allow. */
  maxPositions: number;
  padTokenId: number | null;
  bosTokenId: number | null;
}

type Json = Record<string, unknown>;

export function readJsonFile(path: string, required: boolean): Json | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (!required) return undefined;
      throw new ModelError(ModelErrorKind.MissingFile, path, 'file not found');
    }
    throw new ModelError(ModelErrorKind.InvalidFile, path, `cannot read: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ModelError(ModelErrorKind.InvalidFile, path, `invalid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ModelError(ModelErrorKind.InvalidFile, path, 'expected a JSON object');
  }
  return parsed as Json;
}

function pick(config: Json, names: string[]): unknown {
  for (const name of names) {
    if (config[name] !== undefined && config[name] !== null) return config[name];
  }
  return undefined;
}

function positiveInt(config: Json, file: string, names: string[], fallback?: number): number {
  const value = pick(config, names);
  if (value === undefined) {
    if (fallback !== undefined) return fallback;
    throw new ModelError(
      ModelErrorKind.InvalidConfig,
      file,
      `missing "${names[0]}" (also looked for ${names.slice(1).join(', ') || 'no alias'})`,
    );
  }
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ModelError(
      ModelErrorKind.InvalidConfig,
      file,
      `"${names.find((n) => config[n] !== undefined)}" must be a positive integer, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function idList(value: unknown): number[] | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
    return value as number[];
  }
  return undefined;
}

function optionalId(value: unknown): number | null {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : null;
}

export function loadModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  const config = readJsonFile(file, true) as Json;
  const generation = readJsonFile(join(dir, 'generation_config.json'), false);

  const numLayers = positiveInt(config, file, ['num_hidden_layers', 'n_layer', 'num_layers', 'n_layers']);
  const numAttentionHeads = positiveInt(config, file, ['num_attention_heads', 'n_head', 'num_heads']);
  const numKvHeads = positiveInt(config, file, ['num_key_value_heads', 'n_head_kv', 'num_kv_heads'], numAttentionHeads);
  const hiddenSize = positiveInt(config, file, ['hidden_size', 'n_embd', 'd_model']);
  const vocabSize = positiveInt(config, file, ['vocab_size']);
  const maxPositions = positiveInt(config, file, [
    'max_position_embeddings',
    'n_positions',
    'n_ctx',
    'max_sequence_length',
    'seq_length',
  ]);
  if (hiddenSize % numAttentionHeads !== 0 && pick(config, ['head_dim']) === undefined) {
    throw new ModelError(
      ModelErrorKind.InvalidConfig,
      file,
      `hidden size ${hiddenSize} is not divisible by ${numAttentionHeads} heads and no "head_dim" is given`,
    );
  }
  const headDim = positiveInt(config, file, ['head_dim'], hiddenSize / numAttentionHeads);
  const intermediateSize = positiveInt(config, file, ['intermediate_size', 'n_inner', 'ffn_dim'], 4 * hiddenSize);
  if (numAttentionHeads % numKvHeads !== 0) {
    throw new ModelError(
      ModelErrorKind.InvalidConfig,
      file,
      `${numAttentionHeads} attention heads are not a multiple of ${numKvHeads} key/value heads`,
    );
  }

  const eosTokenIds = idList(generation?.eos_token_id) ?? idList(config.eos_token_id) ?? [];
  if (eosTokenIds.length === 0) {
    throw new ModelError(
      ModelErrorKind.InvalidConfig,
      file,
      'no "eos_token_id" in generation_config.json or config.json',
    );
  }
  const modelType = typeof config.model_type === 'string' ? config.model_type : 'unknown';
  return {
    modelType,
    numLayers,
    numAttentionHeads,
    numKvHeads,
    headDim,
    hiddenSize,
    intermediateSize,
    vocabSize,
    eosTokenIds: [...new Set(eosTokenIds)],
    maxPositions,
    padTokenId: optionalId(generation?.pad_token_id ?? config.pad_token_id),
    bosTokenId: optionalId(generation?.bos_token_id ?? config.bos_token_id),
  };
}
