/**
 * `npm run bench:e2e`: the whole platform (HTTP, Redis, a worker process) against the engine alone, on the same
 * workload in the same run: N concurrent clients (64 by default), each sending its requests one after another
 * (closed loop), greedy, on demo-small; then one client alone on both (the platform's own hop). Reports generated
 * tokens/s and TTFT percentiles, their ratio and the TTFT the platform adds, prints a table and writes JSON to
 * bench/results/. `-- --quick` is CI's smoke.
 */
import { parseArgs } from 'node:util';
import { Rng } from '@switchyard/batching';
import { loadModel } from '@switchyard/models';
import { LaunchedPlatform } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { engineClosedLoop, FULL_BATCH_TOKENS } from './engine-scenarios';
import { closedLoop, LoadResult, RequestSpec } from './loadgen';
import { PromptSource } from './support/prompts';
import { machine, table, writeResult } from './support/stats';

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

async function platformRun(platform: LaunchedPlatform, perClient: RequestSpec[][], name: string): Promise<LoadResult> {
  const target = { name, url: platform.url, headers: platform.auth(), mode: 'stream' as const };
  await closedLoop(target, [[perClient[0][0]]]); // warm-up
  return closedLoop(target, perClient);
}

async function main(): Promise<void> {
  const model = await loadModel(modelDir(MODEL));
  const source = new PromptSource(model.tokenizer, MODEL);
  const rng = new Rng(77);
  const perClient: RequestSpec[][] = Array.from({ length: CLIENTS }, () =>
    Array.from({ length: ROUNDS }, () => ({
      prompt: model.tokenizer.decode(source.take(rng, PROMPT_TOKENS)),
      maxNewTokens: MAX_NEW_TOKENS,
    })),
  );
  const probe = [perClient.slice(0, quick ? 3 : 12).map((list) => list[0])];
  console.log(
    `bench:e2e on ${MODEL} (${machine().cores} cores): ${CLIENTS} concurrent clients x ${ROUNDS} requests, ` +
      `${PROMPT_TOKENS}-token prompts, greedy, max_new_tokens ${MAX_NEW_TOKENS}${quick ? ' [quick]' : ''}`,
  );
  // the runs alternate so that drift on a shared machine hits both: engine, platform, engine, platform
  const engine: LoadResult[] = [];
  const platform: LoadResult[] = [];
  const launched = new LaunchedPlatform();
  await launched.start([
    '--model-id',
    modelDir(MODEL),
    '--max-concurrent-requests',
    String(Math.max(128, CLIENTS)),
    '--max-batch-total-tokens',
    String(FULL_BATCH_TOKENS),
  ]);
  let probeEngine: LoadResult;
  let probePlatform: LoadResult;
  try {
    for (let i = 0; i < (quick ? 1 : 2); i++) {
      engine.push(await engineClosedLoop(model, perClient, 'engine alone (in process)'));
      platform.push(await platformRun(launched, perClient, 'platform (HTTP + Redis + worker)'));
    }
    probeEngine = await engineClosedLoop(model, probe, 'engine alone, 1 client');
    probePlatform = await platformRun(launched, probe, 'platform, 1 client');
  } finally {
    await launched.stop();
    await model.release();
  }
  const rows = [...engine, ...platform, probeEngine, probePlatform];
  console.log(
    '\n' +
      table(
        [
          'run',
          'requests',
          'tokens',
          'tokens/s',
          'TTFT p50 ms',
          'TTFT p90 ms',
          'TTFT p99 ms',
          'latency p50 ms',
          'errors',
        ],
        rows.map((r) => [
          r.target,
          r.requests,
          r.tokens,
          r.tokensPerSecond,
          r.ttft.p50,
          r.ttft.p90,
          r.ttft.p99,
          r.latency.p50,
          r.errors,
        ]),
      ),
  );
  const mean = (list: LoadResult[], f: (r: LoadResult) => number) => list.reduce((s, r) => s + f(r), 0) / list.length;
  const ratio = mean(platform, (r) => r.tokensPerSecond) / mean(engine, (r) => r.tokensPerSecond);
  const addedTtft = mean(platform, (r) => r.ttft.p50) - mean(engine, (r) => r.ttft.p50);
  const addedTtftOne = probePlatform.ttft.p50 - probeEngine.ttft.p50;
  console.log(
    `\nplatform/engine throughput: ${ratio.toFixed(3)} (target >= 0.8)` +
      `\nTTFT p50 added by the platform at ${CLIENTS} clients: ${addedTtft.toFixed(1)} ms (target <= 10 ms)` +
      `\nTTFT p50 added with one client (the hop alone): ${addedTtftOne.toFixed(1)} ms`,
  );
  const strip = (r: LoadResult) => ({ ...r, latencies: undefined });
  const file = writeResult(REPO_ROOT, quick ? 'e2e-quick' : 'e2e', {
    command: `npm run bench:e2e${quick ? ' -- --quick' : ''}`,
    date: new Date().toISOString(),
    machine: machine(),
    model: MODEL,
    workload: { clients: CLIENTS, rounds: ROUNDS, promptTokens: PROMPT_TOKENS, maxNewTokens: MAX_NEW_TOKENS },
    engine: engine.map(strip),
    platform: platform.map(strip),
    probe: [strip(probeEngine), strip(probePlatform)],
    summary: { throughputRatio: ratio, addedTtftP50Ms: addedTtft, addedTtftP50OneClientMs: addedTtftOne },
  });
  console.log(`\nwrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
