/**
 * `npm run bench:e2e`: the whole platform (HTTP, Redis, a worker process) against the engine alone, on the same
 * workload in the same run: N concurrent clients (64 by default), each sending its requests one after another
 * (closed loop), greedy, on demo-small. Reports generated tokens/s and TTFT percentiles for both, their ratio
 * and the TTFT the platform adds, prints a table and writes JSON to bench/results/. `-- --quick` is CI's smoke.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { defaultParameters, Engine, Rng } from '@switchyard/batching';
import { loadModel } from '@switchyard/models';
import { LaunchedPlatform } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { PromptSource } from './support/prompts';
import { machine, percentile, table, writeResult } from './support/stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    clients: { type: 'string' },
    rounds: { type: 'string' },
    'max-new-tokens': { type: 'string' },
  },
});
const quick = args.quick!;
const CLIENTS = Number(args.clients ?? (quick ? 8 : 64));
const ROUNDS = Number(args.rounds ?? (quick ? 1 : 3));
const MAX_NEW_TOKENS = Number(args['max-new-tokens'] ?? (quick ? 16 : 128));
const PROMPT_TOKENS = 64;
const MODEL = 'demo-small';

interface RunResult {
  mode: string;
  requests: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttftP50: number;
  ttftP90: number;
  ttftP99: number;
  latencyP50: number;
  latencyP99: number;
  errors: number;
}

function summarize(
  mode: string,
  seconds: number,
  samples: { ttft: number; latency: number; tokens: number }[],
  errors: number,
): RunResult {
  const tokens = samples.reduce((s, x) => s + x.tokens, 0);
  const ttft = samples.map((s) => s.ttft);
  const latency = samples.map((s) => s.latency);
  return {
    mode,
    requests: samples.length,
    tokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    ttftP50: percentile(ttft, 50),
    ttftP90: percentile(ttft, 90),
    ttftP99: percentile(ttft, 99),
    latencyP50: percentile(latency, 50),
    latencyP99: percentile(latency, 99),
    errors,
  };
}

/** Each client runs its prompts one after another; all clients at once. */
async function closedLoop(
  prompts: string[][],
  one: (prompt: string) => Promise<{ ttft: number; latency: number; tokens: number }>,
): Promise<{ seconds: number; samples: { ttft: number; latency: number; tokens: number }[]; errors: number }> {
  const samples: { ttft: number; latency: number; tokens: number }[] = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    prompts.map(async (list) => {
      for (const prompt of list) {
        try {
          samples.push(await one(prompt));
        } catch (err) {
          errors++;
          if (errors <= 3) console.error(`request failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, samples, errors };
}

async function engineAlone(prompts: string[][]): Promise<RunResult> {
  const model = await loadModel(modelDir(MODEL));
  const engine = new Engine(model, { maxBatchSize: 64 });
  const warm = await engine.generate({
    id: 'warm',
    inputIds: model.tokenizer.encode(prompts[0][0]),
    parameters: defaultParameters({ maxNewTokens: 4, details: false }),
  });
  void warm;
  let n = 0;
  const run = await closedLoop(prompts, (prompt) => {
    const sent = performance.now();
    let first = 0;
    let tokens = 0;
    return new Promise((resolve, reject) => {
      engine.submit(
        {
          id: `e${n++}`,
          inputIds: model.tokenizer.encode(prompt),
          parameters: defaultParameters({ maxNewTokens: MAX_NEW_TOKENS, details: false }),
        },
        (event) => {
          if (event.type === 'token') {
            tokens++;
            if (first === 0) first = performance.now();
          } else if (event.type === 'final') {
            resolve({ ttft: first - sent, latency: performance.now() - sent, tokens });
          } else reject(new Error(event.message));
        },
      );
    });
  });
  await engine.drain();
  await model.release();
  return summarize('engine alone (in process)', run.seconds, run.samples, run.errors);
}

/** One streaming request over HTTP: TTFT is the first SSE event, tokens are counted from the events. */
async function httpStream(
  url: string,
  key: string,
  prompt: string,
): Promise<{ ttft: number; latency: number; tokens: number }> {
  const sent = performance.now();
  const res = await fetch(`${url}/generate_stream`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ inputs: prompt, parameters: { max_new_tokens: MAX_NEW_TOKENS } }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let first = 0;
  let tokens = 0;
  let buffer = '';
  for await (const chunk of res.body) {
    if (first === 0) first = performance.now();
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (event.startsWith('data:{"error"')) throw new Error(event);
      if (event.startsWith('data:')) tokens++;
    }
  }
  return { ttft: first - sent, latency: performance.now() - sent, tokens };
}

async function platformRun(prompts: string[][]): Promise<RunResult> {
  const platform = new LaunchedPlatform();
  await platform.start(['--model-id', modelDir(MODEL), '--max-concurrent-requests', String(Math.max(128, CLIENTS))]);
  try {
    await httpStream(platform.url, platform.adminKey, prompts[0][0]); // warm-up
    const run = await closedLoop(prompts, (prompt) => httpStream(platform.url, platform.adminKey, prompt));
    return summarize('platform (HTTP + Redis + worker)', run.seconds, run.samples, run.errors);
  } finally {
    await platform.stop();
  }
}

async function main(): Promise<void> {
  const model = await loadModel(modelDir(MODEL));
  const source = new PromptSource(model.tokenizer, MODEL);
  const rng = new Rng(77);
  const prompts = Array.from({ length: CLIENTS }, () =>
    Array.from({ length: ROUNDS }, () => model.tokenizer.decode(source.take(rng, PROMPT_TOKENS))),
  );
  await model.release();
  console.log(
    `bench:e2e on ${MODEL} (${machine().cores} cores): ${CLIENTS} concurrent clients x ${ROUNDS} requests, ` +
      `${PROMPT_TOKENS}-token prompts, greedy, max_new_tokens ${MAX_NEW_TOKENS}${quick ? ' [quick]' : ''}`,
  );
  // the two runs alternate so that drift on a shared machine hits both: engine, platform, engine, platform
  const passes = quick ? 1 : 2;
  const engine: RunResult[] = [];
  const platform: RunResult[] = [];
  for (let i = 0; i < passes; i++) {
    engine.push(await engineAlone(prompts));
    platform.push(await platformRun(prompts));
  }
  // The hop alone: one client, one request at a time, so no admission wait hides in the TTFT.
  const probe = Array.from({ length: 1 }, () => prompts.slice(0, quick ? 3 : 12).map((list) => list[0]));
  const probeEngine = { ...(await engineAlone(probe)), mode: 'engine alone, 1 client' };
  const probePlatform = { ...(await platformRun(probe)), mode: 'platform, 1 client' };
  const rows = [...engine, ...platform].sort((a, b) => a.mode.localeCompare(b.mode));
  rows.push(probeEngine, probePlatform);
  console.log(
    '\n' +
      table(
        [
          'mode',
          'requests',
          'tokens',
          'tokens/s',
          'TTFT p50 ms',
          'TTFT p90 ms',
          'TTFT p99 ms',
          'latency p50 ms',
          'latency p99 ms',
          'errors',
        ],
        rows.map((r) => [
          r.mode,
          r.requests,
          r.tokens,
          r.tokensPerSecond,
          r.ttftP50,
          r.ttftP90,
          r.ttftP99,
          r.latencyP50,
          r.latencyP99,
          r.errors,
        ]),
      ),
  );
  const mean = (list: RunResult[], f: (r: RunResult) => number) => list.reduce((s, r) => s + f(r), 0) / list.length;
  const ratio = mean(platform, (r) => r.tokensPerSecond) / mean(engine, (r) => r.tokensPerSecond);
  const addedTtft = mean(platform, (r) => r.ttftP50) - mean(engine, (r) => r.ttftP50);
  console.log(
    `\nplatform/engine throughput: ${ratio.toFixed(3)} (target >= 0.8)` +
      `\nTTFT p50 added by the platform: ${addedTtft.toFixed(1)} ms (target <= 10 ms)` +
      `\nTTFT p50 added with one client (the hop alone): ${(probePlatform.ttftP50 - probeEngine.ttftP50).toFixed(1)} ms`,
  );
  const file = writeResult(REPO_ROOT, 'e2e', {
    command: `npm run bench:e2e${quick ? ' -- --quick' : ''}`,
    date: new Date().toISOString(),
    machine: machine(),
    model: MODEL,
    workload: { clients: CLIENTS, rounds: ROUNDS, promptTokens: PROMPT_TOKENS, maxNewTokens: MAX_NEW_TOKENS },
    engine,
    platform,
    probe: [probeEngine, probePlatform],
    summary: {
      throughputRatio: ratio,
      addedTtftP50Ms: addedTtft,
      addedTtftP50OneClientMs: probePlatform.ttftP50 - probeEngine.ttftP50,
    },
  });
  console.log(`\nwrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
