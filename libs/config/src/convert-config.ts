/**
 * `switchyard convert`'s flags, in the flag-table format: a command of its own, whose --model-id has no default and
 * whose --dtype names what it writes (fp32 or fp16) rather than what a worker serves. --quantize and
 * --quantize-block-size parse as the workers' do.
 */
import { resolve } from 'node:path';
import type { Quantize } from '@switchyard/models';
import { ConfigError } from './config-error';
import { readFlags, usageOf, ValueFlag } from './flag-table';
import { FLAGS } from './flags';

export interface ConvertConfig {
  modelDir: string;
  outDir: string;
  quantize: Quantize;
  dtype: 'fp32' | 'fp16';
  quantizeBlockSize: number | null;
}

const value = <T>(f: ValueFlag<T>): ValueFlag<T> => f;
const directory = (raw: string, { cwd }: { cwd: string }): string => resolve(cwd, raw);

export const CONVERT_FLAGS = {
  'model-id': value({
    default: '',
    defaultHelp: '(required)',
    description: 'The model directory to convert: an Optimum-style ONNX export with its config and tokenizer.',
    env: false,
    processes: ['convert'],
    parse: directory,
  }),
  out: value({
    default: '',
    defaultHelp: '(required)',
    description:
      'Where to write it (onnx-community layout); may be --model-id itself, to add the graph beside the others.',
    env: false,
    processes: ['convert'],
    parse: directory,
  }),
  quantize: value({
    default: 'none',
    description: 'none, q8 or q4: int8 or int4 MatMul weights, in blocks with a zero point each.',
    env: false,
    processes: ['convert'],
    parse: FLAGS.quantize.parse,
  }),
  dtype: value({
    default: 'fp32',
    description: 'fp32 or fp16: fp16 writes float16 weights, activations and KV cache.',
    env: false,
    processes: ['convert'],
    parse: (raw, { name }): 'fp32' | 'fp16' => {
      if (raw !== 'fp32' && raw !== 'fp16') throw new ConfigError(`--${name} must be fp32 or fp16, got "${raw}"`);
      return raw;
    },
  }),
  'quantize-block-size': value({
    default: '',
    defaultHelp: FLAGS['quantize-block-size'].defaultHelp,
    description: FLAGS['quantize-block-size'].description,
    env: false,
    processes: ['convert'],
    parse: FLAGS['quantize-block-size'].parse,
  }),
};

export const CONVERT_USAGE = `${usageOf(
  CONVERT_FLAGS,
  'convert',
  'Usage: switchyard convert --model-id DIR --out DIR [--quantize none|q8|q4] [--dtype fp32|fp16] [--quantize-block-size N]',
)}

Writes the model of --model-id (an Optimum-style ONNX export) to --out in the onnx-community layout:
  --dtype fp16                  onnx/model_fp16.onnx      float16 weights, activations and KV cache
  --quantize q8                 onnx/model_q8.onnx        int8 MatMul weights (blocks of 128, a zero point each)
  --quantize q4                 onnx/model_q4.onnx        int4 MatMul weights (blocks of 32, a zero point each)
  --quantize q4 --dtype fp16    onnx/model_q4f16.onnx     both
with its config, tokenizer and chat template. --out may be --model-id itself: the new graph is added beside the
others, and workers pick it with --dtype. Serving quantizes at load too (--quantize); converting ahead saves that
step on every host and keeps the float weights off them.`;

export function readConvertConfig(argv: string[], cwd = process.cwd()): ConvertConfig {
  // no variables: a conversion is a one-off command, whatever the platform's SWITCHYARD_* say
  const flags = readFlags(CONVERT_FLAGS, 'convert', CONVERT_USAGE, argv, {}, cwd);
  if (!flags.raw('model-id') || !flags.raw('out')) {
    throw new ConfigError(`--model-id and --out are required\n\n${CONVERT_USAGE}`);
  }
  const config = {
    modelDir: flags.get('model-id'),
    outDir: flags.get('out'),
    quantize: flags.get('quantize'),
    dtype: flags.get('dtype'),
    quantizeBlockSize: flags.get('quantize-block-size'),
  };
  if (config.quantize === 'none' && config.dtype === 'fp32') {
    throw new ConfigError('nothing to do: give --quantize q8 or q4, or --dtype fp16');
  }
  return config;
}
