/**
 * `switchyard convert`: prepares a model directory ahead of serving, as llama.cpp's `quantize` does (see
 * libs/models/src/convert.ts): `switchyard convert --model-id DIR --quantize q4 --out DIR2`.
 */
import { ConfigError, CONVERT_USAGE, ConvertConfig, readConvertConfig } from '@switchyard/config';
import { convertModel, formatBytes, ModelError } from '@switchyard/models';

function main(): void {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(CONVERT_USAGE);
    return;
  }
  let config: ConvertConfig;
  try {
    config = readConvertConfig(argv);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    throw err;
  }
  const started = Date.now();
  try {
    const result = convertModel(config.modelDir, config.outDir, {
      dtype: config.dtype,
      quantize: config.quantize,
      quantizeBlockSize: config.quantizeBlockSize,
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
