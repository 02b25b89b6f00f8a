/**
 * `npm run bench:e2e`: the whole platform (HTTP, Redis, a worker process) against the engine alone, on the same
 * workload in the same run: N concurrent clients (64 by default), each sending its requests one after another
 * (closed loop), greedy, on demo-small; then one client alone on both (the platform's own hop). Reports generated
 * tokens/s and TTFT percentiles, their ratio and the TTFT the platform adds, prints a table and writes JSON to
 * bench/results/e2e/results.json. `-- --quick` is CI's smoke.
 *
 * The two sides run in pairs (6 by default), in alternating order (engine first, then platform first, ...), so
 * that drift on a shared machine falls on both; the pairs are split over `--launches` launches of the platform (2
 * by default), since one launch can run a few percent off another throughout. The ratio is the median of all the
 * pairs' ratios, and every pair is printed. `--spread` draws each request's max_new_tokens uniformly from [N/2, 3N/2) instead of N for all: with
 * one length for everyone, every client finishes on the same step and the run is a series of waves.
 */
import { parseArgs } from 'node:util';
import { Rng } from '@switchyard/batching';
import { loadModel } from '@switchyard/models';
import { LaunchedPlatform } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { engineClosedLoop, FULL_BATCH_TOKENS } from './engine-scenarios';
import { closedLoop, LoadResult, RequestSpec } from './loadgen';
import { mergePairs, pairedRuns, PairedRuns } from './support/pairs';
import { PromptSource } from './support/prompts';
import { machine, table, writeResult } from './support/stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    clients: { type: 'string' },
    rounds: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    pairs: { type: 'string' },
    launches: { type: 'string' },
    spread: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const CLIENTS = Number(args.clients ?? (quick ? 8 : 64));
const ROUNDS = Number(args.rounds ?? (quick ? 1 : 3));
const MAX_NEW_TOKENS = Number(args['max-new-tokens'] ?? (quick ? 16 : 128));
const PAIRS = Number(args.pairs ?? (quick ? 1 : 6));
const LAUNCHES = Number(args.launches ?? (quick ? 1 : 2));
const SPREAD = args.spread;
for (const [name, value] of Object.entries({
  clients: CLIENTS,
  rounds: ROUNDS,
  'max-new-tokens': MAX_NEW_TOKENS,
  pairs: PAIRS,
  launches: LAUNCHES,
})) {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer`);
}
if (LAUNCHES > PAIRS) throw new Error('--launches must be at most --pairs: each launch runs at least one pair');
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
      maxNewTokens: SPREAD ? Math.floor(MAX_NEW_TOKENS / 2 + rng.next() * MAX_NEW_TOKENS) : MAX_NEW_TOKENS,
    })),
  );
  const probe = [perClient.slice(0, quick ? 3 : 12).map((list) => list[0])];
  console.log(
    `bench:e2e on ${MODEL} (${machine().cores} cores): ${CLIENTS} concurrent clients x ${ROUNDS} requests, ` +
      `${PROMPT_TOKENS}-token prompts, greedy, max_new_tokens ${SPREAD ? `uniform in [${MAX_NEW_TOKENS / 2}, ${1.5 * MAX_NEW_TOKENS})` : MAX_NEW_TOKENS}, ` +
      `${PAIRS} pairs over ${LAUNCHES} launch${LAUNCHES > 1 ? 'es' : ''} of the platform${quick ? ' [quick]' : ''}`,
  );
  const flags = [
    '--model-id',
    modelDir(MODEL),
    '--max-concurrent-requests',
    String(Math.max(128, CLIENTS)),
    '--max-batch-total-tokens',
    String(FULL_BATCH_TOKENS),
  ];
  const parts: PairedRuns[] = [];
  let probeEngine!: LoadResult;
  let probePlatform!: LoadResult;
  try {
    for (let l = 0, done = 0; l < LAUNCHES; l++) {
      const count = Math.ceil((PAIRS - done) / (LAUNCHES - l));
      const launched = new LaunchedPlatform();
      await launched.start(flags);
      const label = (i: number) => `launch ${l + 1}, pair ${done + i + 1}`;
      try {
        parts.push(
          await pairedRuns(
            count,
            (i) => engineClosedLoop(model, perClient, `engine alone, ${label(i)}`),
            (i) => platformRun(launched, perClient, `platform (HTTP + Redis + worker), ${label(i)}`),
          ),
        );
        if (l === LAUNCHES - 1) {
          probeEngine = await engineClosedLoop(model, probe, 'engine alone, 1 client');
          probePlatform = await platformRun(launched, probe, 'platform, 1 client');
        }
      } finally {
        await launched.stop();
      }
      done += count;
    }
  } finally {
    await model.release();
  }
  const paired = mergePairs(parts);
  const { engine, platform, ratios, ratio, addedTtftP50: addedTtft } = paired;
  const rows = [...engine.flatMap((e, i) => [e, platform[i]]), probeEngine, probePlatform];
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
  const addedTtftOne = probePlatform.ttft.p50 - probeEngine.ttft.p50;
  console.log(
    `\nplatform/engine throughput, median of ${PAIRS} pairs: ${ratio.toFixed(3)} (target >= 0.8); ` +
      `pairs: ${ratios.map((r) => r.toFixed(3)).join(', ')}; mean tokens/s ${mean(platform, (r) => r.tokensPerSecond).toFixed(0)} ` +
      `against ${mean(engine, (r) => r.tokensPerSecond).toFixed(0)}` +
      `\nTTFT p50 added by the platform at ${CLIENTS} clients, median of the pairs: ${addedTtft.toFixed(1)} ms (target <= 10 ms)` +
      `\nTTFT p50 added with one client (the hop alone): ${addedTtftOne.toFixed(1)} ms`,
  );
  const strip = (r: LoadResult) => ({ ...r, latencies: undefined });
  const file = writeResult(REPO_ROOT, quick ? 'quick-e2e' : 'e2e', {
    command: `npm run bench:e2e${quick ? ' -- --quick' : ''}`,
    date: new Date().toISOString(),
    machine: machine(),
    model: MODEL,
    workload: {
      clients: CLIENTS,
      rounds: ROUNDS,
      promptTokens: PROMPT_TOKENS,
      maxNewTokens: SPREAD ? { uniform: [MAX_NEW_TOKENS / 2, 1.5 * MAX_NEW_TOKENS] } : MAX_NEW_TOKENS,
      pairs: PAIRS,
      launches: LAUNCHES,
    },
    engine: engine.map(strip),
    platform: platform.map(strip),
    probe: [strip(probeEngine), strip(probePlatform)],
    summary: {
      throughputRatio: ratio,
      pairRatios: ratios,
      addedTtftP50Ms: addedTtft,
      addedTtftP50OneClientMs: addedTtftOne,
    },
  });
  console.log(`\nwrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
