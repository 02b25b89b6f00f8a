/**
 * `npm run bench:engine`: the engine against the raw ONNX Runtime loop, and continuous batching against static
 * batching and one request at a time, all measured in one run on one model. Prints tables and writes JSON to
 * bench/results/engine/results.json. `-- --quick` runs a short version (CI's smoke); `-- --model demo-tiny` picks another model.
 */
import { parseArgs } from 'node:util';
import { Rng } from '@switchyard/batching';
import { loadModel } from '@switchyard/models';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import {
  BENCH_GRAMMAR,
  constrainedRatio,
  constrainedRounds,
  efficiencyRounds,
  limitTable,
  MIXED_SWEEP,
  MIXED_SWEEP_QUICK,
  mixedSweep,
  SWEEP_HEADERS,
  sweepRows,
} from './engine-scenarios';
import { rawLoop } from './raw-loop';
import { PromptSource } from './support/prompts';
import { machine, table, writeResult } from './support/stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    model: { type: 'string', default: 'demo-small' },
    threads: { type: 'string', default: '2' },
  },
});
const quick = args.quick;

function log(line: string): void {
  console.log(line);
}

async function main(): Promise<void> {
  const threads = Number(args.threads);
  const model = await loadModel(modelDir(args.model), { intraOpThreads: threads });
  const prompts = new PromptSource(model.tokenizer);
  const rng = new Rng(2026);
  log(
    `bench:engine on ${args.model} (${machine().cores} cores, ${threads} intra-op threads, loaded in ${model.loadMs.toFixed(0)} ms)${quick ? ' [quick]' : ''}`,
  );
  await rawLoop(model, [prompts.take(rng, 16)], 8); // warm-up

  log('\n1. The limit: raw session.run decode loop, prompt 128 tokens');
  const limit = await limitTable(model, prompts, rng, quick ? [1, 8] : [1, 8, 32, 64], quick ? 9 : 33);
  log(
    table(
      ['batch', 'ms/step', 'tokens/s'],
      limit.map((r) => [r.batch, r.msPerStep, r.batch / (r.msPerStep / 1000)]),
    ),
  );

  const batch = quick ? 8 : 64;
  const newTokens = quick ? 16 : 128;
  log(
    `\n2. Efficiency: ${batch} concurrent requests of ${newTokens} new tokens (64-token prompts), engine vs raw loop`,
  );
  const effPrompts = Array.from({ length: batch }, () => prompts.take(rng, 64));
  const { rounds, rawMean, engineMean: engMean } = await efficiencyRounds(model, effPrompts, newTokens, quick ? 1 : 2);
  log(
    table(
      ['round', 'raw tokens/s', 'engine tokens/s', 'ratio'],
      [
        ...rounds.map((r, i) => [i + 1, r.raw, r.engine, r.engine / r.raw]),
        ['mean', rawMean, engMean, engMean / rawMean],
      ],
    ),
  );

  log(
    `\n3. Constrained decoding: the same ${batch} requests with half the rows under a JSON Schema grammar, against ` +
      'none (mask cache warm; every row generates the full budget)',
  );
  const constrained = await constrainedRounds(model, effPrompts, newTokens, quick ? 1 : 2);
  log(
    table(
      ['decoding', 'free tokens/s', 'half constrained tokens/s', 'ratio'],
      constrained.map((r) => [r.mode, r.free, r.halfConstrained, r.halfConstrained / r.free]),
    ),
  );

  const sweep = quick ? MIXED_SWEEP_QUICK : MIXED_SWEEP;
  const { capacity, points } = await mixedSweep(model, prompts, rng, sweep);
  log(
    `\n4. Mixed workload: ${sweep.count} requests per load, Poisson arrivals at ${sweep.loads.join(', ')}× one at a ` +
      `time's capacity (${capacity.toFixed(0)} requested tokens/s, measured first): ${points.map((p) => p.ratePerSecond).join(', ')} requests/s; ` +
      'prompts 8-256 tokens, max_new_tokens 16-256',
  );
  log(table(SWEEP_HEADERS, sweepRows(points)));
  const summary = {
    efficiencyRatio: engMean / rawMean,
    constrainedRatioSampled: constrainedRatio(constrained, 'sampled'),
    constrainedRatioGreedy: constrainedRatio(constrained, 'greedy'),
    oneAtATimeCapacity: capacity,
    perRate: points.map((p) => ({
      load: p.load,
      rate: p.ratePerSecond,
      continuousOverSequential: p.modes[0].tokensPerSecond / p.modes[2].tokensPerSecond,
      continuousP99: p.modes[0].latencyP99,
      staticP99: p.modes[1].latencyP99,
    })),
  };
  log(
    `\nengine/limit at batch ${batch}: ${summary.efficiencyRatio.toFixed(3)} (target >= 0.85)` +
      `\nhalf constrained/free at batch ${batch}: sampled ${summary.constrainedRatioSampled.toFixed(3)}, greedy ` +
      `${summary.constrainedRatioGreedy.toFixed(3)} (target >= 0.8)` +
      summary.perRate
        .map(
          (r) =>
            `\nat ${r.load}x (${r.rate}/s): continuous/one-at-a-time ${r.continuousOverSequential.toFixed(2)}x (target >= 2.5); ` +
            `p99 continuous ${r.continuousP99.toFixed(0)} ms, static ${r.staticP99.toFixed(0)} ms`,
        )
        .join(''),
  );
  const file = writeResult(REPO_ROOT, quick ? 'quick-engine' : 'engine', {
    command: `npm run bench:engine${quick ? ' -- --quick' : ''}`,
    date: new Date().toISOString(),
    machine: machine(),
    model: args.model,
    intraOpThreads: threads,
    limit,
    efficiency: { batch, newTokens, promptLength: 64, rounds },
    constrained: { batch, newTokens, grammar: BENCH_GRAMMAR.length, rounds: constrained },
    mixed: { count: sweep.count, oneAtATimeCapacity: capacity, points },
    summary,
  });
  log(`\nwrote ${file}`);
  await model.release();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
