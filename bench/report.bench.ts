/**
 * `npm run bench`: every scenario of the benchmark report, each measured in the same run as its baseline, on
 * this machine. Writes `bench/results/<date>/report.md` (tables, the machine, the command), `results.json`
 * and two SVG plots: throughput against concurrency, and the latency CDF of continuous, static and sequential
 * batching. `-- --quick` is CI's smoke: every scenario, tiny, into `bench/results/quick-<date>/` (not kept).
 * `-- --plots-only <dir>` draws a report's plots again from its results.json, measuring nothing.
 *
 * 1. Limit: the raw session.run loop at batch 1 to 64.     2. Engine: the engine in process against the limit.
 * 3. End to end: the platform against the engine.          4. Batching: continuous, static, one at a time.
 * 5. Peer: a transformers.js server, one request at a time. 6. Multi-model: 3 models on a budget for 2.
 * 7. Scale: 1, 2 and 4 workers.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_SCHEDULER_CONFIG, Rng } from '@switchyard/batching';
import { estimateModelMemory, formatBytes, loadModel, LoadedModel, poolBytes } from '@switchyard/models';
import { LaunchedPlatform } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import {
  constrainedRatio,
  constrainedRounds,
  efficiencyRounds,
  engineClosedLoop,
  FULL_BATCH_TOKENS,
  limitTable,
  MIXED_SWEEP,
  MIXED_SWEEP_QUICK,
  mixedSweep,
  SWEEP_HEADERS,
  sweepRows,
} from './engine-scenarios';
import { closedLoop, LoadResult, metricDelta, RequestSpec, scrape, send, Target } from './loadgen';
import { startTransformersServer } from './peer/transformers-server';
import { pairedRuns } from './support/pairs';
import { PromptSource } from './support/prompts';
import { machine, table } from './support/stats';
import { cdfChartSpec, lineChartSpec, renderSvg } from './support/plots';

const { values: args } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, 'plots-only': { type: 'string' } },
});
const quick = args.quick;
const MODEL = 'demo-small';
const NEW_TOKENS = quick ? 16 : 128;
/** End to end: engine and platform runs, in pairs of alternating order (as `npm run bench:e2e`). */
const E2E_PAIRS = quick ? 1 : 3;

const md: string[] = [];
const json: Record<string, unknown> = {};
const say = (line = '') => {
  console.log(line);
  md.push(line);
};
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '—');

function loadRow(r: LoadResult): (string | number)[] {
  return [
    r.target,
    r.requests,
    r.errors,
    r.tokensPerSecond,
    r.ttft.p50,
    r.ttft.p99,
    r.itl.p50,
    r.latency.p50,
    r.latency.p90,
    r.latency.p99,
  ];
}
const LOAD_HEADERS = [
  'run',
  'requests',
  'errors',
  'tokens/s',
  'TTFT p50 ms',
  'TTFT p99 ms',
  'ITL p50 ms',
  'latency p50 ms',
  'p90',
  'p99',
];

function requests(
  prompts: PromptSource,
  rng: Rng,
  model: LoadedModel,
  clients: number,
  rounds: number,
): RequestSpec[][] {
  return Array.from({ length: clients }, () =>
    Array.from({ length: rounds }, () => ({
      prompt: model.tokenizer.decode(prompts.take(rng, 64)),
      maxNewTokens: NEW_TOKENS,
    })),
  );
}

async function withPlatform<T>(flags: string[], body: (p: LaunchedPlatform, target: Target) => Promise<T>): Promise<T> {
  const platform = new LaunchedPlatform();
  await platform.start(['--model-id', modelDir(MODEL), '--max-concurrent-requests', '256', ...flags]);
  try {
    return await body(platform, { name: 'switchyard', url: platform.url, headers: platform.auth(), mode: 'stream' });
  } finally {
    await platform.stop();
  }
}

/** What the plots are drawn from; results.json keeps it, so that `--plots-only` can draw them again. */
interface PlotData {
  throughput: {
    model: string;
    /** [clients, generated tokens/s] */
    switchyard: [number, number][];
    peer: [number, number][];
  };
  /** The batching policies' request latencies at one rate of the mixed workload. */
  latencyCdf: { load: number; ratePerSecond: number; latenciesMs: Record<string, number[]> };
}

async function writePlots(dir: string, plots: PlotData): Promise<void> {
  const { throughput, latencyCdf } = plots;
  const cdf = cdfChartSpec(
    Object.entries(latencyCdf.latenciesMs).map(([name, values]) => ({ name, values: values.map((v) => v / 1000) })),
    {
      title: 'Request latency by batching policy',
      subtitle: `Mixed workload, ${latencyCdf.ratePerSecond} requests/s (${latencyCdf.load}× one at a time's rate)`,
      xTitle: 'request latency (s, log scale)',
      yTitle: 'requests finished within',
      xLog: 10,
    },
  );
  const line = lineChartSpec(
    [
      { name: 'Switchyard (HTTP, SSE)', points: throughput.switchyard },
      { name: 'transformers.js server', points: throughput.peer },
    ],
    {
      title: `Throughput against concurrency, ${throughput.model}`,
      subtitle: 'Closed loop: each client sends again when its last request ends',
      xTitle: 'concurrent clients (log scale)',
      yTitle: 'generated tokens/s',
      xLog: 2,
    },
  );
  writeFileSync(join(dir, 'latency-cdf.svg'), await renderSvg(cdf));
  writeFileSync(join(dir, 'throughput.svg'), await renderSvg(line));
  console.log(`wrote ${relative(REPO_ROOT, join(dir, 'latency-cdf.svg'))} and throughput.svg`);
}

async function main(): Promise<void> {
  if (args['plots-only'] !== undefined) {
    const dir = resolve(args['plots-only']);
    const saved = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { plots?: PlotData };
    if (!saved.plots) throw new Error(`${join(dir, 'results.json')} has no "plots": it predates them`);
    return writePlots(dir, saved.plots);
  }
  const started = Date.now();
  const stamp = new Date().toISOString().slice(0, 10);
  const dir = join(REPO_ROOT, 'bench', 'results', quick ? `quick-${stamp}` : stamp);
  mkdirSync(dir, { recursive: true });
  const m = machine();
  const model = await loadModel(modelDir(MODEL));
  const prompts = new PromptSource(model.tokenizer, MODEL);
  const rng = new Rng(2026);

  say(`# Switchyard benchmark report${quick ? ' (quick smoke: too short to read anything into)' : ''}`);
  say();
  say(`- Command: \`npm run bench${quick ? ' -- --quick' : ''}\`, ${new Date().toISOString()}`);
  say(
    `- Machine: ${m.cores} cores (${m.cpu}), Node ${m.node}, no GPU; model ${MODEL} (fp32 ONNX, ${model.config.numLayers} layers)`,
  );
  say(
    '- Every ratio below compares runs made in this same run, on this same machine: the machine is shared and noisy.',
  );
  say();

  // 1. Limit
  const batches = quick ? [1, 8] : [1, 2, 4, 8, 16, 32, 64];
  const limit = await limitTable(model, prompts, rng, batches, quick ? 9 : 33);
  const exported = await loadModel(modelDir(MODEL), { fuseAttention: false });
  const limitExported = await limitTable(exported, prompts, rng, batches, quick ? 9 : 33);
  await exported.release();
  json.limit = limit;
  json.limitExported = limitExported;
  say('## 1. The limit: the raw session.run decode loop');
  say();
  say(
    'Prompts of 128 tokens, one `session.run` per step, a greedy argmax per row, nothing else; decode steps only ' +
      '(the prefill is left out). On the session the engine uses (the attention rewritten to read a cache the caller ' +
      'owns) and, for comparison, on the ONNX export as it is.',
  );
  say();
  say(
    table(
      ['batch', 'ms/step', 'tokens/s', 'export ms/step', 'export tokens/s'],
      limit.map((r, i) => [
        r.batch,
        r.msPerStep,
        (r.batch * 1000) / r.msPerStep,
        limitExported[i].msPerStep,
        (r.batch * 1000) / limitExported[i].msPerStep,
      ]),
    ),
  );
  say();

  // 2. Engine vs limit
  const full = quick ? 8 : 64;
  const effPrompts = Array.from({ length: full }, () => prompts.take(rng, 64));
  const { rounds, rawMean, engineMean: engMean } = await efficiencyRounds(model, effPrompts, NEW_TOKENS, quick ? 1 : 3);
  json.engine = { rounds, rawMean, engineMean: engMean };
  say('## 2. The engine against the limit');
  say();
  say(
    `${full} concurrent requests of ${NEW_TOKENS} new tokens (64-token prompts), the same prompts on both, prefill ` +
      'included, in alternating rounds.',
  );
  say();
  say(
    table(
      ['round', 'raw loop tokens/s', 'engine tokens/s', 'ratio'],
      [
        ...rounds.map((r, i) => [i + 1, r.raw, r.engine, r.engine / r.raw]),
        ['mean', rawMean, engMean, engMean / rawMean],
      ],
    ),
  );
  say();
  say(`Engine / limit: **${fmt(engMean / rawMean, 3)}** (target ≥ 0.85).`);
  say();

  // 2b. Constrained decoding
  const constrained = await constrainedRounds(model, effPrompts, NEW_TOKENS, quick ? 1 : 2);
  json.constrained = constrained;
  say('### Constrained decoding');
  say();
  say(
    `The same ${full} requests with every other row under a JSON grammar (records of a string, a number, an enum and a ` +
      `list of strings, left open so that each row runs its ${NEW_TOKENS} tokens), against the same batch with none; ` +
      "sampled (temperature 1) and greedy, in alternating rounds after a warm-up that fills the grammar's mask cache.",
  );
  say();
  say(
    table(
      ['decoding', 'round', 'free tokens/s', 'half constrained tokens/s', 'ratio'],
      constrained.map((r, i) => [
        r.mode,
        (i % (quick ? 1 : 2)) + 1,
        r.free,
        r.halfConstrained,
        r.halfConstrained / r.free,
      ]),
    ),
  );
  say();
  say(
    `Half constrained / free: sampled **${fmt(constrainedRatio(constrained, 'sampled'), 3)}**, greedy **${fmt(constrainedRatio(constrained, 'greedy'), 3)}** ` +
      "(target ≥ 0.8). Greedy free rows take the graph's argmax and never fetch the logits; a constrained row needs them.",
  );
  say();

  // 4. Batching (in process)
  const sweep = quick ? MIXED_SWEEP_QUICK : MIXED_SWEEP;
  const { capacity, points } = await mixedSweep(model, prompts, rng, sweep);
  json.oneAtATimeCapacity = capacity;
  json.batching = points.map((p) => ({
    load: p.load,
    ratePerSecond: p.ratePerSecond,
    modes: p.modes.map((r) => ({ ...r, latencies: undefined })),
  }));
  // The CDF of the middle rate: every policy has work, and the batching policies have some headroom.
  const cdfPoint = points[Math.floor((points.length - 1) / 2)];
  const latencyCdf: PlotData['latencyCdf'] = {
    load: cdfPoint.load,
    ratePerSecond: cdfPoint.ratePerSecond,
    latenciesMs: Object.fromEntries(
      cdfPoint.modes.map((r) => [r.mode, r.latencies.map((v) => Math.round(v * 10) / 10)]),
    ),
  };

  // 3. End to end, and throughput against concurrency
  const e2eRounds = quick ? 1 : 3; // as bench:e2e: each client's requests after its first arrive in waves
  const e2eLoad = requests(prompts, rng, model, full, e2eRounds);
  const concurrency = quick ? [1, 4] : [1, 2, 4, 8, 16, 32, 64];
  const curve: { clients: number; result: LoadResult }[] = [];
  const e2e = await withPlatform(['--max-batch-total-tokens', String(FULL_BATCH_TOKENS)], async (platform, target) => {
    await send(target, e2eLoad[0][0]);
    const before = await scrape(platform.url);
    const paired = await pairedRuns(
      E2E_PAIRS,
      (i) => engineClosedLoop(model, e2eLoad, `engine alone (in process), pair ${i + 1}`),
      (i) => closedLoop({ ...target, name: `switchyard, pair ${i + 1}` }, e2eLoad),
    );
    const after = await scrape(platform.url);
    for (const c of concurrency) {
      const load = requests(prompts, rng, model, c, c >= 16 ? 2 : 4);
      curve.push({ clients: c, result: await closedLoop({ ...target, name: `switchyard, ${c} clients` }, load) });
    }
    const counters = metricDelta(before, after, ['tgi_request_success', 'tgi_request_failure', 'tgi_batch_concat']);
    return { ...paired, counters };
  });
  json.e2e = {
    engine: e2e.engine.map((r) => ({ ...r, latencies: undefined })),
    platform: e2e.platform.map((r) => ({ ...r, latencies: undefined })),
    ratios: e2e.ratios,
    ratio: e2e.ratio,
    addedTtftP50Ms: e2e.addedTtftP50,
  };
  json.e2eMetrics = e2e.counters;

  // 5. Peer: transformers.js, one request at a time
  const peerClients = quick ? 4 : 32;
  const peerLoad = requests(prompts, rng, model, peerClients, quick ? 1 : 2);
  const peer = await startTransformersServer({ modelDir: modelDir(MODEL), port: 0 });
  let peerResult: LoadResult;
  const peerCurve: { clients: number; result: LoadResult }[] = [];
  try {
    const peerTarget: Target = { name: 'transformers.js server', url: peer.url, mode: 'json' };
    await send(peerTarget, peerLoad[0][0]);
    peerResult = await closedLoop(peerTarget, peerLoad);
    for (const c of quick ? [1] : [1, 4, 16]) {
      const load = requests(prompts, rng, model, c, c >= 16 ? 1 : 2);
      peerCurve.push({ clients: c, result: await closedLoop({ ...peerTarget, name: `peer, ${c} clients` }, load) });
    }
    peerCurve.push({ clients: peerClients, result: peerResult });
  } finally {
    await peer.close();
  }
  const swPeer = await withPlatform([], (_p, target) => closedLoop({ ...target, name: 'switchyard' }, peerLoad));
  json.peer = {
    loadMs: peer.loadMs,
    peer: { ...peerResult, latencies: undefined },
    switchyard: { ...swPeer, latencies: undefined },
  };

  say('## 3. End to end: the platform against the engine');
  say();
  say(
    `${full} clients in a closed loop (each sends its next request when the last ends, ${e2eRounds} each), ${NEW_TOKENS} new tokens, greedy; ` +
      'the platform is HTTP + Redis + one worker process, streaming over SSE. Both run with ' +
      `\`--max-batch-total-tokens ${FULL_BATCH_TOKENS}\`, so that every client's request fits one batch (the default, ` +
      '8192, would queue most of them).',
  );
  say();
  say(
    table(
      LOAD_HEADERS,
      e2e.engine.flatMap((engine, i) => [loadRow(engine), loadRow(e2e.platform[i])]),
    ),
  );
  say();
  say(
    `Platform / engine throughput, median of ${E2E_PAIRS} pair${E2E_PAIRS > 1 ? 's run in alternating order' : ''}: ` +
      `**${fmt(e2e.ratio, 3)}** (target ≥ 0.8; pairs ${e2e.ratios.map((r) => fmt(r, 3)).join(', ')}); ` +
      `TTFT p50 added, median: ${fmt(e2e.addedTtftP50, 1)} ms (target ≤ 10 ms).`,
  );
  say();
  say('Throughput against concurrency (closed loop):');
  say();
  say(
    table(
      LOAD_HEADERS,
      curve.map((c) => loadRow(c.result)),
    ),
  );
  say();
  say('![throughput against concurrency](throughput.svg)');
  say();

  say('## 4. Continuous against static batching against one request at a time');
  say();
  say(
    `${sweep.count} requests per load, Poisson arrivals at ${sweep.loads.join(', ')} times the rate that one request ` +
      `at a time serves on this machine (${fmt(capacity)} requested tokens/s, measured first on the same request mix; ` +
      "each load's request rate is set from its own requests' mean max_new_tokens), " +
      `that is ${points.map((p) => p.ratePerSecond).join(', ')} requests/s, each load its own arrivals; ` +
      'prompts of 8 to 256 tokens, max_new_tokens uniform in [16, 256], replayed on the engine in process with each ' +
      'policy (the engine defaults; static: no request joins a running batch). On this CPU a decode step costs about ' +
      'the same per row past a few rows, so batching gains about 3× per token over one row at a time, and beyond ' +
      'that more rows mean slower rows: the policies differ in when requests start, and in who waits.',
  );
  say();
  say(table(SWEEP_HEADERS, sweepRows(points)));

  say();
  say(
    'Per load, continuous / one at a time throughput (target ≥ 2.5×) and p99 latency, continuous against static ' +
      '(target: below):',
  );
  say();
  for (const p of points) {
    const [c, st, seq] = p.modes;
    const ratio = c.tokensPerSecond / seq.tokensPerSecond;
    const below = c.latencyP99 < st.latencyP99;
    // What the arrivals offer: the tokens served over the span in which they arrived. No policy outruns its
    // arrivals, so at a light rate the ratio measures the load, not the batching.
    const offered = c.tokens / (p.arrivalSpanMs / 1000);
    const ceiling = offered / seq.tokensPerSecond;
    const cappedBy =
      ratio < 2.5 && ceiling < 2.5
        ? `: the arrivals offer about ${fmt(offered)} tokens/s, ${fmt(ceiling, 2)}× one at a time's rate; ` +
          `continuous keeps ${fmt(Math.min(100, (100 * c.tokensPerSecond) / offered))}% of that pace`
        : '';
    say(
      `- ${p.load}× (${p.ratePerSecond}/s): **${fmt(ratio, 2)}×** (${ratio >= 2.5 ? 'met' : 'not met'}${cappedBy}); ` +
        `p99 ${fmt(c.latencyP99)} ms against ${fmt(st.latencyP99)} ms (${below ? 'below' : 'not below'}).`,
    );
  }
  say();
  say('![latency CDF](latency-cdf.svg)');
  say();

  say('## 5. Against a transformers.js server');
  say();
  say(
    `A plain HTTP server on \`@huggingface/transformers\` serving the same \`models/${MODEL}\` with ` +
      `\`pipeline('text-generation')\`, one request at a time (loaded in ${fmt(peer.loadMs)} ms). ` +
      `${peerClients} clients in a closed loop on both, the same prompts, ${NEW_TOKENS} new tokens, greedy. The peer ` +
      'answers JSON, so its TTFT is its whole latency.',
  );
  say();
  say(
    table(LOAD_HEADERS, [
      loadRow(peerResult),
      loadRow(swPeer),
      ...peerCurve.slice(0, -1).map((c) => loadRow(c.result)),
    ]),
  );
  say();
  say(
    `Switchyard / transformers.js throughput: **${fmt(swPeer.tokensPerSecond / peerResult.tokensPerSecond, 2)}×** (target ≥ 2.5×); ` +
      `p50 latency ${fmt(swPeer.latency.p50)} ms against ${fmt(peerResult.latency.p50)} ms ` +
      `(${fmt(swPeer.latency.p50 / peerResult.latency.p50, 2)} of it; target ≤ 0.33).`,
  );
  say();
  json.plots = {
    throughput: {
      model: MODEL,
      switchyard: curve.map((c) => [c.clients, c.result.tokensPerSecond]),
      peer: peerCurve.map((c) => [c.clients, c.result.tokensPerSecond]),
    },
    latencyCdf,
  } satisfies PlotData;
  await writePlots(dir, json.plots as PlotData);
  const scaleLoad = requests(prompts, rng, model, quick ? 4 : 32, quick ? 1 : 2);
  await model.release();

  // 6. Multi-model: three models on a budget that holds two (by the workers' own estimate, default budgets)
  const cost = (name: string) =>
    poolBytes(estimateModelMemory(modelDir(name)), {
      totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
      prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
    });
  const multiBudget = 2 * cost('demo-small') + Math.round(cost('demo-tiny') / 2);
  const multi = await withPlatform(['--device-memory', String(multiBudget)], async (platform) => {
    const admin = { 'content-type': 'application/json', ...platform.auth() };
    const ids = [`mm-tiny-${Date.now()}`, `mm-small-b-${Date.now()}`];
    for (const [id, path] of [
      [ids[0], modelDir('demo-tiny')],
      [ids[1], modelDir('demo-small')],
    ]) {
      const res = await fetch(`${platform.url}/admin/models`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ id, path }),
      });
      if (res.status !== 201) throw new Error(`registering ${id}: ${res.status} ${await res.text()}`);
    }
    const order = [MODEL, ...ids];
    const rows: { model: string; round: number; latency: number }[] = [];
    const spec = { prompt: 'In the beginning God', maxNewTokens: 32 };
    for (let round = 0; round < (quick ? 2 : 4); round++) {
      for (const id of order) {
        const started = performance.now();
        const res = await fetch(`${platform.url}/generate`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ model: id, inputs: spec.prompt, parameters: { max_new_tokens: spec.maxNewTokens } }),
        });
        await res.text();
        if (!res.ok) throw new Error(`${id}: HTTP ${res.status}`);
        rows.push({ model: id, round, latency: performance.now() - started });
      }
    }
    const metrics = await scrape(platform.url);
    const loads: Record<string, { count: number; meanMs: number }> = {};
    for (const id of order) {
      let sum = 0;
      let count = 0;
      for (const [key, value] of metrics) {
        if (!key.includes(`model="${id}"`)) continue;
        if (key.startsWith('switchyard_model_load_duration_seconds_sum')) sum += value;
        if (key.startsWith('switchyard_model_load_duration_seconds_count')) count += value;
      }
      loads[id] = { count, meanMs: count > 0 ? (sum / count) * 1000 : NaN };
    }
    let evictions = 0;
    for (const [key, value] of metrics) if (key.startsWith('switchyard_model_evictions_total')) evictions += value;
    for (const id of ids) await fetch(`${platform.url}/admin/models/${id}`, { method: 'DELETE', headers: admin });
    return { order, rows, loads, evictions };
  });
  json.multiModel = multi;
  say('## 6. Three models on a budget that holds two');
  say();
  say(
    `One worker with \`--device-memory ${formatBytes(multiBudget)}\` (two demo-smalls and half a demo-tiny, as the workers estimate them): ${MODEL} (the launcher's default, pinned) plus two models registered ` +
      'through the admin API (demo-tiny, and demo-small under a second id). Requests go round-robin, one at a time, ' +
      '32 new tokens; each request for the model that is not resident evicts the other.',
  );
  say();
  say(
    table(
      ['model', 'loads', 'mean load ms', ...Array.from({ length: quick ? 2 : 4 }, (_, i) => `round ${i + 1} ms`)],
      multi.order.map((id) => [
        id,
        multi.loads[id].count,
        multi.loads[id].meanMs,
        ...multi.rows.filter((r) => r.model === id).map((r) => r.latency),
      ]),
    ),
  );
  say();
  say(`Evictions counted by the worker: ${multi.evictions}.`);
  say();

  // 7. Scale
  const scale: { workers: number; result: LoadResult }[] = [];
  for (const workers of quick ? [1, 2] : [1, 2, 4]) {
    const result = await withPlatform(['--num-workers', String(workers)], async (_p, target) => {
      await send(target, scaleLoad[0][0]);
      return closedLoop({ ...target, name: `${workers} worker(s)` }, scaleLoad);
    });
    scale.push({ workers, result });
  }
  json.scale = scale.map((s) => ({ workers: s.workers, result: { ...s.result, latencies: undefined } }));
  say('## 7. Scale: 1, 2 and 4 workers on this machine');
  say();
  say(
    `${quick ? 4 : 32} clients in a closed loop, ${NEW_TOKENS} new tokens. Each worker holds its own copy of the model and ` +
      `its own ONNX Runtime threads; on ${m.cores} cores they compete for the same CPUs, so this shows the cost of ` +
      'contention, not a gain.',
  );
  say();
  say(
    table(
      LOAD_HEADERS,
      scale.map((s) => loadRow(s.result)),
    ),
  );
  say();
  say(`Total time: ${fmt((Date.now() - started) / 1000)} s.`);

  writeFileSync(join(dir, 'report.md'), md.join('\n') + '\n');
  writeFileSync(
    join(dir, 'results.json'),
    JSON.stringify({ command: `npm run bench${quick ? ' -- --quick' : ''}`, machine: m, ...json }, null, 2) + '\n',
  );
  console.log(`\nwrote ${relative(REPO_ROOT, join(dir, 'report.md'))}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
