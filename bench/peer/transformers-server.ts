/**
 * Peer baseline for the benchmark report: a plain node:http server on `@huggingface/transformers` (transformers.js)
 * serving a local model directory with `pipeline('text-generation', ...)`, the way a user would without Switchyard.
 * Requests queue in FIFO order and run one at a time (no batching). Fully offline: remote models are disabled.
 *
 *   POST /generate  TGI body {inputs, parameters: {max_new_tokens?, do_sample?}} -> {generated_text, details}
 *   GET  /health    200 once the model is loaded
 *
 * Run: `node dist/bench/peer/transformers-server.js --model-dir models/demo-small --port 18090 [--host 127.0.0.1]`
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  env,
  pipeline,
  TextStreamer,
  type PreTrainedTokenizer,
  type TextGenerationPipeline,
} from '@huggingface/transformers';

export interface TransformersServerOptions {
  modelDir: string;
  port: number;
  host?: string;
}

export interface TransformersServer {
  url: string;
  close(): Promise<void>;
  /** Milliseconds spent loading the tokenizer and the ONNX session. */
  loadMs: number;
}

/** Used when a request names no max_new_tokens and the model's generation_config.json has none either. */
const FALLBACK_MAX_NEW_TOKENS = 20;
const MAX_BODY_BYTES = 1 << 20;

class BadRequest extends Error {}

/**
 * Counts the token ids `generate()` produces: its first `put` is the prompt, every later one is one step. Extends
 * TextStreamer only because that is the type `generate()` declares; it decodes nothing.
 */
class CountingStreamer extends TextStreamer {
  private promptSeen = false;
  generated = 0;

  constructor(tokenizer: PreTrainedTokenizer) {
    super(tokenizer, { skip_prompt: true });
  }

  override put(value: bigint[][]): void {
    if (!this.promptSeen) {
      this.promptSeen = true;
      return;
    }
    this.generated += value.length;
  }

  override end(): void {}
}

interface GenerateRequest {
  inputs: string;
  maxNewTokens: number | undefined;
  doSample: boolean;
}

function parseGenerateBody(raw: string): GenerateRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    throw new BadRequest('request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null) throw new BadRequest('request body must be a JSON object');
  const { inputs, parameters } = body as { inputs?: unknown; parameters?: unknown };
  if (typeof inputs !== 'string' || inputs.length === 0) throw new BadRequest('`inputs` must be a non-empty string');
  if (parameters !== undefined && parameters !== null && typeof parameters !== 'object') {
    throw new BadRequest('`parameters` must be an object');
  }
  const params = (parameters ?? {}) as { max_new_tokens?: unknown; do_sample?: unknown };
  const maxNewTokens = params.max_new_tokens ?? undefined;
  if (maxNewTokens !== undefined && (!Number.isInteger(maxNewTokens) || (maxNewTokens as number) < 1)) {
    throw new BadRequest('`max_new_tokens` must be a positive integer');
  }
  return { inputs, maxNewTokens: maxNewTokens as number | undefined, doSample: params.do_sample === true };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BadRequest('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

/** Loads `opts.modelDir` with transformers.js and serves it over HTTP; resolves once the model is loaded. */
export async function startTransformersServer(opts: TransformersServerOptions): Promise<TransformersServer> {
  const modelDir = path.resolve(opts.modelDir);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = path.dirname(modelDir) + path.sep;

  const started = performance.now();
  // `onnx/model.onnx` (dtype fp32 means no file-name suffix) with its external weights in `onnx/model.onnx_data`.
  const generator: TextGenerationPipeline = await pipeline('text-generation', path.basename(modelDir), {
    dtype: 'fp32',
    device: 'cpu',
    use_external_data_format: true,
    local_files_only: true,
  });
  const loadMs = performance.now() - started;
  const defaultMaxNewTokens = generator.model.generation_config?.max_new_tokens ?? FALLBACK_MAX_NEW_TOKENS;

  // FIFO: each request chains onto the previous one, so generations run strictly one at a time.
  let tail: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(job: () => Promise<T>): Promise<T> => {
    const run = tail.then(job, job);
    tail = run.catch(() => undefined);
    return run;
  };

  const generate = async (request: GenerateRequest) => {
    const streamer = new CountingStreamer(generator.tokenizer);
    const output = await generator(request.inputs, {
      max_new_tokens: request.maxNewTokens ?? defaultMaxNewTokens,
      do_sample: request.doSample,
      return_full_text: false,
      streamer,
    });
    const first = (Array.isArray(output[0]) ? output[0][0] : output[0]) as { generated_text: unknown };
    const text = typeof first.generated_text === 'string' ? first.generated_text : '';
    return { generated_text: text, details: { generated_tokens: streamer.generated } };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/health' && req.method === 'GET') {
      sendJson(res, 200, { status: 'ok' });
      return;
    }
    if (url.pathname !== '/generate') {
      sendJson(res, 404, { error: `no route ${req.method} ${url.pathname}`, error_type: 'not_found' });
      return;
    }
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'use POST', error_type: 'method_not_allowed' });
      return;
    }
    let request: GenerateRequest;
    try {
      request = parseGenerateBody(await readBody(req));
    } catch (err) {
      if (err instanceof BadRequest) {
        sendJson(res, 400, { error: err.message, error_type: 'validation' });
        return;
      }
      throw err;
    }
    const result = await enqueue(async () => {
      // A client that gave up while queued costs nothing.
      if (res.destroyed || res.writableEnded) return undefined;
      return generate(request);
    });
    if (result) sendJson(res, 200, result);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      sendJson(res, 500, { error: message, error_type: 'generation' });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    loadMs,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await tail;
      await generator.dispose();
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      'model-dir': { type: 'string', default: 'models/demo-small' },
      port: { type: 'string', default: '18090' },
      host: { type: 'string', default: '127.0.0.1' },
    },
  });
  const server = await startTransformersServer({
    modelDir: values['model-dir'],
    port: Number(values.port),
    host: values.host,
  });
  console.log(`transformers.js peer: ${values['model-dir']} loaded in ${server.loadMs.toFixed(0)} ms on ${server.url}`);
  const stop = () => {
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
