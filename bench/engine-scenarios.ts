/**
 * The engine's benchmark scenarios, shared by `npm run bench:engine` and the full report (`npm run bench`): the raw
 * loop at fixed batch sizes, the engine at a full batch, a full batch with half its rows constrained by a grammar,
 * and a mixed workload replayed on continuous, static and one-at-a-time batching.
 */
import { performance } from 'node:perf_hooks';
import {
  defaultParameters,
  Engine,
  EngineConfig,
  EngineRequest,
  GenerationParameters,
  jsonSchemaRegex,
  Rng,
} from '@switchyard/batching';
import type { LoadedModel } from '@switchyard/models';
import { closedLoop, LoadResult, RequestSpec, Sample, streamedSample } from './loadgen';
import { rawLoop, RawLoopResult } from './raw-loop';
import { PromptSource } from './support/prompts';
import { percentile } from './support/stats';

/** The raw loop at each batch size, prompts of 128 tokens. */
export async function limitTable(
  model: LoadedModel,
  prompts: PromptSource,
  rng: Rng,
  batches: number[],
  newTokens: number,
): Promise<RawLoopResult[]> {
  const results: RawLoopResult[] = [];
  for (const batch of batches) {
    const rows = Array.from({ length: batch }, () => prompts.take(rng, 128));
    results.push(await rawLoop(model, rows, newTokens));
  }
  return results;
}

/** The engine with every prompt submitted at once, each generating exactly `newTokens`. */
export async function engineRun(
  model: LoadedModel,
  prompts: number[][],
  newTokens: number,
  rowParameters: (row: number) => Partial<GenerationParameters> = () => ({}),
) {
  // The scenario is every prompt in one batch, as the raw loop runs them: the token budget must hold them all.
  const budget = prompts.length * (Math.max(...prompts.map((p) => p.length)) + newTokens);
  const engine = new Engine(model, { maxBatchSize: prompts.length, maxBatchTotalTokens: Math.max(budget, 8192) });
  const started = performance.now();
  await Promise.all(
    prompts.map((inputIds, i) =>
      engine.generate({
        id: `eff-${i}`,
        inputIds,
        parameters: defaultParameters({ maxNewTokens: newTokens, ignoreEos: true, ...rowParameters(i) }),
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  return { seconds, tokensPerSecond: (prompts.length * newTokens) / seconds };
}

const BENCH_RECORD = jsonSchemaRegex({
  type: 'object',
  properties: {
    name: { type: 'string' },
    score: { type: 'number' },
    level: { enum: ['low', 'mid', 'high'] },
    tags: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 4 },
  },
  required: ['name', 'score', 'level', 'tags'],
});
/**
 * The grammar of the constrained scenario: a JSON list of records left open (no closing bracket), so that a
 * constrained row runs as long as a free one and walks keys, strings, numbers and enums all the way.
 */
export const BENCH_GRAMMAR = String.raw`\[${BENCH_RECORD}(?:,${BENCH_RECORD})*`;

export interface ConstrainedRound {
  mode: 'sampled' | 'greedy';
  free: number;
  halfConstrained: number;
}

/** The mean half-constrained / free ratio of one decoding mode's rounds. */
export function constrainedRatio(rounds: ConstrainedRound[], mode: ConstrainedRound['mode']): number {
  const of = rounds.filter((r) => r.mode === mode);
  return of.reduce((sum, r) => sum + r.halfConstrained / r.free, 0) / of.length;
}

/**
 * A batch with half its rows under `BENCH_GRAMMAR` against the same batch with none, in alternating rounds after a
 * warm-up that fills the grammar's mask cache (as a server does with a schema it has seen). Every row generates
 * exactly `newTokens`; tokens/s include the prefill.
 */
export async function constrainedRounds(
  model: LoadedModel,
  prompts: number[][],
  newTokens: number,
  count: number,
): Promise<ConstrainedRound[]> {
  const rounds: ConstrainedRound[] = [];
  for (const mode of ['sampled', 'greedy'] as const) {
    const base = (i: number): Partial<GenerationParameters> =>
      mode === 'sampled' ? { doSample: true, temperature: 1, seed: i } : {};
    const half = (i: number) => ({ ...base(i), grammar: i % 2 === 0 ? BENCH_GRAMMAR : null });
    await engineRun(model, prompts, newTokens, half); // warm-up
    for (let round = 0; round < count; round++) {
      const free = await engineRun(model, prompts, newTokens, base);
      const constrained = await engineRun(model, prompts, newTokens, half);
      rounds.push({ mode, free: free.tokensPerSecond, halfConstrained: constrained.tokensPerSecond });
    }
  }
  return rounds;
}

export interface EfficiencyRounds {
  rounds: { raw: number; engine: number }[];
  rawMean: number;
  engineMean: number;
}

/**
 * The engine against the raw loop on the same prompts, in alternating rounds: the machine's speed drifts, and each
 * ratio compares neighbours. Tokens/s with the prefill included, on both.
 */
export async function efficiencyRounds(
  model: LoadedModel,
  prompts: number[][],
  newTokens: number,
  count: number,
): Promise<EfficiencyRounds> {
  const rounds: { raw: number; engine: number }[] = [];
  for (let round = 0; round < count; round++) {
    const raw = await rawLoop(model, prompts, newTokens);
    const eng = await engineRun(model, prompts, newTokens);
    rounds.push({ raw: raw.tokensPerSecond, engine: eng.tokensPerSecond });
  }
  const mean = (values: number[]) => values.reduce((a, v) => a + v, 0) / values.length;
  return { rounds, rawMean: mean(rounds.map((r) => r.raw)), engineMean: mean(rounds.map((r) => r.engine)) };
}

export interface Arrival {
  at: number;
  inputIds: number[];
  maxNewTokens: number;
}

/** The mixed workload's requests: prompts of 8 to 256 tokens, `max_new_tokens` uniform in [16, 256]. */
export function mixedRequests(prompts: PromptSource, rng: Rng, count: number): Omit<Arrival, 'at'>[] {
  return Array.from({ length: count }, () => {
    const length = 8 + Math.floor(rng.next() * 249);
    return { inputIds: prompts.take(rng, length), maxNewTokens: 16 + Math.floor(rng.next() * 241) };
  });
}

/**
 * Poisson arrivals of `requests` at `ratePerSecond`, their times scaled so that the last arrives at
 * count / rate seconds: the gaps stay random, and the rate offered is the one asked for, not a draw's.
 */
export function poissonArrivals(rng: Rng, requests: Omit<Arrival, 'at'>[], ratePerSecond: number): Arrival[] {
  let t = 0;
  const times = requests.map(() => (t += -Math.log(1 - rng.next())));
  const scale = (requests.length / ratePerSecond / t) * 1000;
  return requests.map((r, i) => ({ ...r, at: times[i] * scale }));
}

export interface ModeResult {
  mode: string;
  requests: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttftP50: number;
  ttftP99: number;
  latencyP50: number;
  latencyP99: number;
  maxBatch: number;
  /** Every request's latency in milliseconds, for CDF plots. */
  latencies: number[];
}

/**
 * The token budget of the closed-loop scenarios, given to the engine alone and to the platform alike, so that every
 * client's request fits one batch: 64 rows projected at the longest row's width (up to 64 + 128) plus the most
 * tokens any row may still add (up to 128) is at most 64 × 320 = 20480. The default (8192) is tuned for latency
 * under overload and would queue most of them.
 */
export const FULL_BATCH_TOKENS = 32768;

/** The batching policies the mixed workload compares, as engine configs. */
export const BATCHING_POLICIES: [string, Partial<EngineConfig>][] = [
  ['continuous', { maxBatchSize: 64 }],
  // gather a batch, run it to the end: no waiting request joins a running batch
  ['static', { maxBatchSize: 64, waitingServedRatio: Infinity, maxWaitingTokens: Infinity }],
  ['one at a time', { maxBatchSize: 1 }],
];

/**
 * The mixed workload is replayed at several loads, each with its own arrivals: on a CPU a decode step costs about
 * the same per row at any batch size past a few rows, so what batching changes depends on the load. A load is a
 * multiple of what one request at a time serves on this machine, measured first on the same request mix
 * (`oneAtATimeCapacity`), so that the scenario loads a fast machine as much as a slow one (fixed rates would leave
 * a fast machine idle enough that every policy keeps pace). The capacity is counted in requested tokens
 * (max_new_tokens) per second, and each load's request rate is set from its own requests' mean max_new_tokens: a
 * rate counted in requests offers more or less than the load named, as a sample's requests run short or long. One
 * request at a time falls behind at every load; the highest loads the batching policies near the machine's
 * capacity, the lowest leaves them headroom.
 */
export const MIXED_SWEEP = { count: 96, loads: [1.5, 3, 4.5] };
export const MIXED_SWEEP_QUICK = { count: 12, loads: [2] };

/**
 * Requested tokens (max_new_tokens) per second that one request at a time serves on the mixed workload's request
 * mix: `count` requests submitted at once to an engine with batches of one.
 */
export async function oneAtATimeCapacity(
  model: LoadedModel,
  prompts: PromptSource,
  rng: Rng,
  count = 12,
): Promise<number> {
  const requests = mixedRequests(prompts, rng, count);
  const result = await replay(
    model,
    'capacity',
    { maxBatchSize: 1 },
    requests.map((r) => ({ ...r, at: 0 })),
  );
  return sum(requests.map((r) => r.maxNewTokens)) / result.seconds;
}

const sum = (list: number[]) => list.reduce((s, x) => s + x, 0);

export interface SweepPoint {
  /** The offered load, as a multiple of one at a time's capacity, and the arrival rate (requests/s) it makes. */
  load: number;
  ratePerSecond: number;
  /** When the last request arrived (ms from the first): no policy serves the load faster than it comes. */
  arrivalSpanMs: number;
  modes: ModeResult[];
}

export const SWEEP_HEADERS = [
  'load ×',
  'rate /s',
  'policy',
  'tokens/s',
  'TTFT p50 ms',
  'TTFT p99 ms',
  'latency p50 ms',
  'latency p99 ms',
  'max batch',
];

/** One table row per rate and policy, in SWEEP_HEADERS' order. */
export function sweepRows(points: SweepPoint[]): (string | number)[][] {
  return points.flatMap((p) =>
    p.modes.map((m) => [
      p.load,
      p.ratePerSecond,
      m.mode,
      m.tokensPerSecond,
      m.ttftP50,
      m.ttftP99,
      m.latencyP50,
      m.latencyP99,
      m.maxBatch,
    ]),
  );
}

/** Every policy on the mixed workload at each rate of `sweep`. */
export async function mixedSweep(
  model: LoadedModel,
  prompts: PromptSource,
  rng: Rng,
  sweep: { count: number; loads: number[] },
): Promise<{ capacity: number; points: SweepPoint[] }> {
  const capacity = await oneAtATimeCapacity(model, prompts, rng);
  const points: SweepPoint[] = [];
  for (const load of sweep.loads) {
    const requests = mixedRequests(prompts, rng, sweep.count);
    const meanTokens = sum(requests.map((r) => r.maxNewTokens)) / requests.length;
    const rate = Math.round(((load * capacity) / meanTokens) * 10) / 10;
    const arrivals = poissonArrivals(rng, requests, rate);
    points.push({
      load,
      ratePerSecond: rate,
      arrivalSpanMs: arrivals[arrivals.length - 1].at,
      modes: await replayPolicies(model, arrivals),
    });
  }
  return { capacity, points };
}

/** Replays the same arrivals on each policy in turn. */
export async function replayPolicies(
  model: LoadedModel,
  arrivals: Arrival[],
  policies = BATCHING_POLICIES,
): Promise<ModeResult[]> {
  // A short burst first, so that no policy pays for the first calls' warm-up (allocations, kernel selection).
  await replay(
    model,
    'warm-up',
    {},
    arrivals.slice(0, 8).map((a) => ({ ...a, at: 0, maxNewTokens: 16 })),
  );
  const results: ModeResult[] = [];
  for (const [mode, config] of policies) results.push(await replay(model, mode, config, arrivals));
  return results;
}

/** Replays the arrivals on a fresh engine with `config` (continuous, static or one at a time). */
export async function replay(
  model: LoadedModel,
  mode: string,
  config: Partial<EngineConfig>,
  arrivals: Arrival[],
): Promise<ModeResult> {
  const engine = new Engine(model, config);
  let maxBatch = 0;
  engine.onStep = (s) => {
    maxBatch = Math.max(maxBatch, s.batchSize);
  };
  const ttft: number[] = [];
  const latency: number[] = [];
  let tokens = 0;
  const start = performance.now();
  await Promise.all(
    arrivals.map(
      (a, i) =>
        new Promise<void>((resolve, reject) => {
          setTimeout(
            () => {
              const submitted = performance.now();
              let first = 0;
              const request: EngineRequest = {
                id: `${mode}-${i}`,
                inputIds: a.inputIds,
                parameters: defaultParameters({ maxNewTokens: a.maxNewTokens, ignoreEos: true, details: false }),
              };
              engine.submit(request, (event) => {
                if (event.type === 'token') {
                  tokens++;
                  if (first === 0) {
                    first = performance.now();
                    ttft.push(first - submitted);
                  }
                } else if (event.type === 'final') {
                  latency.push(performance.now() - submitted);
                  resolve();
                } else reject(new Error(event.message));
              });
            },
            Math.max(0, a.at - (performance.now() - start)),
          );
        }),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return {
    mode,
    requests: arrivals.length,
    tokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    ttftP50: percentile(ttft, 50),
    ttftP99: percentile(ttft, 99),
    latencyP50: percentile(latency, 50),
    latencyP99: percentile(latency, 99),
    maxBatch,
    latencies: latency,
  };
}

/**
 * The engine alone in a closed loop, the in-process counterpart of `closedLoop` over HTTP: each client submits
 * its next request when the last one ends. Greedy, the model's own eos; TTFT is the first token event.
 */
export async function engineClosedLoop(
  model: LoadedModel,
  perClient: RequestSpec[][],
  name = 'engine alone',
): Promise<LoadResult> {
  const engine = new Engine(model, { maxBatchSize: 64, maxBatchTotalTokens: FULL_BATCH_TOKENS });
  await engine.generate({
    id: 'warm-up',
    inputIds: model.tokenizer.encode(perClient[0][0].prompt),
    parameters: defaultParameters({ maxNewTokens: 4, details: false }),
  });
  let n = 0;
  const one = (spec: RequestSpec) =>
    new Promise<Sample>((resolve, reject) => {
      const sent = performance.now();
      let first = 0;
      let tokens = 0;
      engine.submit(
        {
          id: `closed-${n++}`,
          inputIds: model.tokenizer.encode(spec.prompt),
          parameters: defaultParameters({ maxNewTokens: spec.maxNewTokens, details: false }),
        },
        (event) => {
          if (event.type === 'token') {
            tokens++;
            if (first === 0) first = performance.now();
          } else if (event.type === 'final') {
            resolve(streamedSample(sent, first, performance.now(), tokens));
          } else reject(new Error(event.message));
        },
      );
    });
  const result = await closedLoop(name, perClient, one);
  await engine.drain();
  return result;
}
