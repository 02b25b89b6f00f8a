/**
 * `switchyard convert`: prepares a model directory ahead of serving, as llama.cpp's `quantize` does (see
 * libs/models/src/convert.ts): `switchyard convert --model-id DIR --quantize q4 --out DIR2`.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { convertModel, formatBytes, ModelError, parseQuantize } from '@switchyard/models';

const USAGE = `Usage: switchyard convert --model-id DIR --out DIR [--quantize none|q8|q4] [--dtype fp32|fp16] [--quantize-block-size N]

Writes the model of --model-id (an Optimum-style ONNX export) to --out in the onnx-community layout:
  --dtype fp16                  onnx/model_fp16.onnx      float16 weights, activations and KV cache
  --quantize q8                 onnx/model_q8.onnx        int8 MatMul weights (blocks of 128, a zero point each)
  --quantize q4                 onnx/model_q4.onnx        int4 MatMul weights (blocks of 32, a zero point each)
  --quantize q4 --dtype fp16    onnx/model_q4f16.onnx     both
with its config, tokenizer and chat template. --out may be --model-id itself: the new graph is added beside the
others, and workers pick it with --dtype. Serving quantizes at load too (--quantize); converting ahead saves that
step on every host and keeps the float weights off them.`;

function main(): void {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: process.argv.slice(2),
      options: {
        'model-id': { type: 'string' },
        out: { type: 'string' },
        quantize: { type: 'string', default: 'none' },
        dtype: { type: 'string', default: 'fp32' },
        'quantize-block-size': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (typeof values['model-id'] !== 'string' || typeof values.out !== 'string')
    fail(`--model-id and --out are required\n\n${USAGE}`);
  let quantize;
  try {
    quantize = parseQuantize(String(values.quantize));
  } catch (err) {
    fail(`--quantize ${(err as Error).message}`);
  }
  const dtype = String(values.dtype);
  if (dtype !== 'fp32' && dtype !== 'fp16') fail(`--dtype must be fp32 or fp16, got "${dtype}"`);
  const blockRaw = values['quantize-block-size'];
  const block = blockRaw === undefined ? null : Number(blockRaw);
  if (block !== null && (!Number.isInteger(block) || block < 16 || block > 256 || (block & (block - 1)) !== 0)) {
    fail(`--quantize-block-size must be 16, 32, 64, 128 or 256, got "${String(blockRaw)}"`);
  }
  if (quantize === 'none' && dtype === 'fp32') fail('nothing to do: give --quantize q8 or q4, or --dtype fp16');
  const started = Date.now();
  try {
    const result = convertModel(resolve(String(values['model-id'])), resolve(String(values.out)), {
      dtype,
      quantize,
      quantizeBlockSize: block,
      onProgress: (message) => console.log(`switchyard convert: ${message}`),
    });
    console.log(
      `switchyard convert: wrote ${result.graphFile} (${result.dtype}): ${formatBytes(result.bytes)}, ` +
        `from ${formatBytes(result.sourceBytes)} of weights, in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    fail(err instanceof ModelError ? err.message : String((err as Error).stack ?? err));
  }
}

function fail(message: string): never {
  console.error(`switchyard convert: ${message}`);
  process.exit(2);
}

main();
