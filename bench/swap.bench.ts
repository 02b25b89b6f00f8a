/**
 * `npm run bench:swap`: serverless swaps. Eight models (demo-tiny and demo-small, each in fp32, fp16, q8 and q4,
 * registered under their own ids) share one worker whose device budget holds two of them and whose host budget
 * parks four; requests arrive at a steady rate (Poisson), each for a model drawn from a Zipf(1.1) distribution. The
 * same arrivals run twice in one run: with the parked tier, and with it off (`--host-memory 0`, the baseline).
 * Reported per run: swaps by tier with their mean and p99 (the worker's own timing of each load or resume), TTFT p50
 * and p99 of requests that waited on a swap and of those that did not, and throughput. Then two checks on their own:
 * requests to a resident model while other models load on the same worker, against the same requests with no load
 * going on; and, when bench:large's synthetic model is there, its cold load (graph cache warm) and its resume.
 * Writes bench/results/swap/report.md, results.json and a TTFT CDF; `-- --quick` is CI's smoke. `-- --plots-only`
 * draws the CDF again from results.json, measuring nothing.
 */
import { mkdirSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DEFAULT_SCHEDULER_CONFIG, Rng } from '@switchyard/batching';
import { PoolEvent } from '@switchyard/protocol';
import { convertModel, estimateModelMemory, formatBytes, loadTokenizer, poolBytes } from '@switchyard/models';
import { LaunchedPlatform } from '../test/support/launched';
import { generatedIds, modelSpec, Platform, waitFor } from '../test/support/platform';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { RequestSpec, Sample, send, Target } from './loadgen';
import { PromptSource } from './support/prompts';
import { machine, percentile, table } from './support/stats';
import { cdfChartSpec, renderSvg } from './support/plots';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'plots-only': { type: 'boolean', default: false },
    requests: { type: 'string' },
    rate: { type: 'string' },
    'models-dir': { type: 'string' },
  },
});
const quick = args.quick;
const REQUESTS = Number(args.requests ?? (quick ? 24 : 240));
const RATE = Number(args.rate ?? 4);
const PROMPT_TOKENS = 24;
const NEW_TOKENS = 16;
const LARGE_DIR = resolve(args['models-dir'] ?? join(REPO_ROOT, 'bench', 'models'), 'llama-500m');

function log(line: string): void {
  console.log(`bench:swap: ${line}`);
}

interface Variant {
  id: string;
  dir: string;
  quantize: 'none' | 'q8' | 'q4';
}

/** The eight models: fp32 as shipped, fp16 converted ahead (in a temporary directory), q8 and q4 at load. */
function variants(root: string): Variant[] {
  const out: Variant[] = [];
  for (const name of ['demo-tiny', 'demo-small']) {
    const short = name.replace('demo-', '');
    const fp16 = join(root, `${short}-fp16`);
    convertModel(modelDir(name), fp16, { dtype: 'fp16', quantize: 'none', quantizeBlockSize: null });
    out.push({ id: short, dir: modelDir(name), quantize: 'none' });
    out.push({ id: `${short}-fp16`, dir: fp16, quantize: 'none' });
    out.push({ id: `${short}-q8`, dir: modelDir(name), quantize: 'q8' });
    out.push({ id: `${short}-q4`, dir: modelDir(name), quantize: 'q4' });
  }
  return out;
}

/** Zipf(s) over n ranks: the probability of rank k (1-based) is proportional to 1 / k^s. */
function zipf(rng: Rng, n: number, s: number): number {
  const weights = Array.from({ length: n }, (_, k) => 1 / (k + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  let x = rng.next() * total;
  for (let k = 0; k < n; k++) {
    x -= weights[k];
    if (x <= 0) return k;
  }
  return n - 1;
}

interface Arrival {
  at: number;
  spec: RequestSpec;
}

function arrivals(models: Variant[]): Arrival[] {
  const rng = new Rng(1101);
  const tokenizer = loadTokenizer(modelDir('demo-small'));
  const source = new PromptSource(tokenizer);
  // the popularity order: a fixed shuffle, so that neither size nor precision is always the popular one
  const order = [...models].sort(
    (a, b) => ((a.id.length * 31 + a.id.charCodeAt(0)) % 7) - ((b.id.length * 31 + b.id.charCodeAt(0)) % 7),
  );
  const out: Arrival[] = [];
  let t = 0;
  for (let i = 0; i < REQUESTS; i++) {
    t += (-Math.log(1 - rng.next()) / RATE) * 1000;
    const model = order[zipf(rng, order.length, 1.1)].id;
    out.push({
      at: t,
      spec: { prompt: tokenizer.decode(source.take(rng, PROMPT_TOKENS)), maxNewTokens: NEW_TOKENS, model },
    });
  }
  return out;
}

interface Sent {
  model: string;
  sentAt: number;
  sample: Sample | null;
}

async function replay(target: Target, list: Arrival[]): Promise<{ sent: Sent[]; seconds: number }> {
  const started = Date.now();
  const t0 = performance.now();
  const sent: Sent[] = [];
  await Promise.all(
    list.map(
      ({ at, spec }) =>
        new Promise<void>((done) => {
          setTimeout(
            () => {
              const entry: Sent = { model: spec.model!, sentAt: started + (performance.now() - t0), sample: null };
              sent.push(entry);
              send(target, spec).then(
                (sample) => {
                  entry.sample = sample;
                  done();
                },
                (err: Error) => {
                  console.error(`bench:swap: ${spec.model}: ${err.message}`);
                  done();
                },
              );
            },
            Math.max(0, at - (performance.now() - t0)),
          );
        }),
    ),
  );
  return { sent, seconds: (performance.now() - t0) / 1000 };
}

/** Whether `model` was resident (loaded, not parked, unloaded or loading) at `at`, from the worker's event log. */
function residentAt(events: PoolEvent[], model: string, at: number): boolean {
  let resident = false;
  for (const e of events) {
    if (e.at > at) break;
    if (e.model === model) resident = e.type === 'loaded';
  }
  return resident;
}

interface RunResult {
  name: string;
  requests: number;
  errors: number;
  tokensPerSecond: number;
  swaps: Record<'disk' | 'parked', { count: number; meanMs: number; p99Ms: number }>;
  smallSwaps: Record<'disk' | 'parked', { count: number; meanMs: number; p99Ms: number }>;
  ttft: Record<'swap' | 'resident', { count: number; p50: number; p99: number; values: number[] }>;
}

const stats = (values: number[]) => ({
  count: values.length,
  meanMs: values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN,
  p99Ms: percentile(values, 99),
});

async function run(name: string, models: Variant[], list: Arrival[], device: number, host: number): Promise<RunResult> {
  const platform = new LaunchedPlatform();
  await platform.start([
    '--model-id',
    modelDir('demo-tiny'),
    '--model-name',
    `anchor-${process.pid}`,
    '--device-memory',
    String(device),
    '--host-memory',
    String(host),
    '--max-concurrent-requests',
    '512',
  ]);
  try {
    const admin = { 'content-type': 'application/json', ...platform.auth() };
    for (const m of models) {
      let res = await fetch(`${platform.url}/admin/models`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ id: m.id, path: m.dir, quantize: m.quantize }),
      });
      // left by an earlier run that did not finish: registered again, as this run has it
      if (res.status === 409) {
        res = await fetch(`${platform.url}/admin/models/${m.id}`, {
          method: 'PATCH',
          headers: admin,
          body: JSON.stringify({ path: m.dir, quantize: m.quantize, enabled: true }),
        });
      }
      if (res.status !== 201 && res.status !== 200) {
        throw new Error(`registering ${m.id}: ${res.status} ${await res.text()}`);
      }
    }
    const target: Target = { name, url: platform.url, headers: platform.auth(), mode: 'stream' };
    // warm-up: every model once, so that the graph cache is warm and each has loaded from disk once
    for (const m of models) await send(target, { prompt: 'Love is', maxNewTokens: 2, model: m.id });
    const since = Date.now();
    const { sent, seconds } = await replay(target, list);
    const events = (await platform.events()).filter((e) => e.at >= since).sort((a, b) => a.at - b.at);
    const loads = events.filter((e) => e.type === 'loaded');
    const byTier = (tier: 'disk' | 'parked', filter: (e: PoolEvent) => boolean = () => true) =>
      stats(loads.filter((e) => e.tier === tier && filter(e)).map((e) => e.ms ?? 0));
    const isSmallFp32 = (e: PoolEvent) => e.model === 'small';
    const ttft = { swap: [] as number[], resident: [] as number[] };
    for (const s of sent) {
      if (!s.sample) continue;
      (residentAt(events, s.model, s.sentAt) ? ttft.resident : ttft.swap).push(s.sample.ttft);
    }
    const tokens = sent.reduce((n, s) => n + (s.sample?.tokens ?? 0), 0);
    const summary = (values: number[]) => ({
      count: values.length,
      p50: percentile(values, 50),
      p99: percentile(values, 99),
      values,
    });
    const result: RunResult = {
      name,
      requests: sent.length,
      errors: sent.filter((s) => !s.sample).length,
      tokensPerSecond: tokens / seconds,
      swaps: { disk: byTier('disk'), parked: byTier('parked') },
      smallSwaps: { disk: byTier('disk', isSmallFp32), parked: byTier('parked', isSmallFp32) },
      ttft: { swap: summary(ttft.swap), resident: summary(ttft.resident) },
    };
    log(
      `${name}: ${result.requests} requests, ${result.errors} errors, ${result.tokensPerSecond.toFixed(1)} tokens/s; ` +
        `swaps from disk ${result.swaps.disk.count} (mean ${result.swaps.disk.meanMs.toFixed(0)} ms), ` +
        `from the parked tier ${result.swaps.parked.count} (mean ${result.swaps.parked.meanMs.toFixed(1)} ms)`,
    );
    for (const m of models) await fetch(`${platform.url}/admin/models/${m.id}`, { method: 'DELETE', headers: admin });
    return result;
  } finally {
    await platform.stop();
  }
}

/** TTFT of requests to a resident model, alone and while other models load and unload on the same worker. */
async function loadInterference(): Promise<{ quiet: number[]; loading: number[]; loadsDuring: number }> {
  const platform = new Platform();
  const small = modelSpec('resident', modelDir('demo-small'));
  const others = [modelSpec('other-a', modelDir('demo-small')), modelSpec('other-b', modelDir('demo-tiny'))];
  await platform.startWorker('interference', ['--host-memory', '0', '--intra-op-threads', '0']);
  try {
    await platform.sendCommand('interference', { type: 'load', spec: small, reason: 'request' });
    await platform.waitForLoaded('interference', 'resident');
    const tokenizer = loadTokenizer(modelDir('demo-small'));
    const rng = new Rng(5);
    const source = new PromptSource(tokenizer);
    const count = quick ? 8 : 60;
    /** Requests one after another, `count` of them and as many more as `during` takes. */
    const ttfts = async (during: () => Promise<void>) => {
      const out: number[] = [];
      let busy = true;
      const background = during().finally(() => (busy = false));
      while (out.length < count || busy) {
        const started = performance.now();
        const id = await platform.enqueue('resident', source.take(rng, PROMPT_TOKENS), { maxNewTokens: 4 });
        let first = 0;
        await platform.readStream(id, 60_000, (e) => {
          if (e.type === 'token' && first === 0) first = performance.now();
        });
        out.push(first - started);
      }
      await background;
      return out;
    };
    const quiet = await ttfts(() => Promise.resolve());
    let loadsDuring = 0;
    const loading = await ttfts(async () => {
      for (let round = 0; round < (quick ? 1 : 4); round++) {
        for (const spec of others) {
          await platform.sendCommand('interference', { type: 'load', spec, reason: 'request' });
          await platform.waitForLoaded('interference', spec.id);
          loadsDuring++;
          await platform.sendCommand('interference', { type: 'unload', model: spec.id });
          await waitFor(`${spec.id} unloaded`, async () => {
            const beat = await platform.heartbeat('interference');
            return beat && !beat.models.some((m) => m.id === spec.id);
          });
        }
      }
    });
    return { quiet, loading, loadsDuring };
  } finally {
    await platform.close();
  }
}

/**
 * The 500M synthetic model (bench:large makes it): a cold load with the graph cache warm, and a resume. The same
 * weights under three ids: the first load checks the rewrite, the second writes ONNX Runtime's optimised graph, the
 * third is the cold load measured (it parks the first, which then comes back). After each, eight greedy tokens of the
 * same prompt must be the first load's: a fast load that computes something else is not a load.
 */
async function large(): Promise<{ quantize: string; coldMs: number; parkedMs: number; sameTokens: boolean }[] | null> {
  if (quick || !existsSync(join(LARGE_DIR, 'onnx', 'model.onnx'))) return null;
  const out: { quantize: string; coldMs: number; parkedMs: number; sameTokens: boolean }[] = [];
  for (const quantize of ['q8', 'none'] as const) {
    const platform = new Platform();
    const cost = poolBytes(estimateModelMemory(LARGE_DIR, { quantize }), {
      totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
      prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
    });
    await platform.startWorker('large', [
      '--device-memory',
      String(Math.round(cost * 1.2)),
      '--host-memory',
      '8GiB',
      '--quantize',
      quantize,
      '--intra-op-threads',
      '0',
    ]);
    try {
      const [a, b, c] = ['large-a', 'large-b', 'large-c'].map((id) => modelSpec(id, LARGE_DIR));
      const prompt = [1, 450, 1996, 354, 1701, 432, 1204, 975];
      const tokens = async (spec: typeof a) =>
        generatedIds(await platform.readStream(await platform.enqueue(spec.id, prompt, { maxNewTokens: 8 }), 300_000));
      const loadOf = async (spec: typeof a, tier: 'disk' | 'parked') => {
        const matching = async () =>
          (await platform.events()).filter((e) => e.model === spec.id && e.type === 'loaded' && e.tier === tier);
        const before = (await matching()).length;
        await platform.sendCommand('large', { type: 'load', spec, reason: 'request' });
        const event = await waitFor(
          `${spec.id} loaded (${tier})`,
          async () => {
            const now = await matching();
            return now.length > before ? now.at(-1) : undefined;
          },
          300_000,
        );
        return { ms: event.ms ?? NaN, ids: await tokens(spec) };
      };
      const first = await loadOf(a, 'disk'); // checks the rewrite: the reference tokens
      const written = await loadOf(b, 'disk'); // writes the optimised graph
      const cold = await loadOf(c, 'disk'); // the same graph under another id: a cold load, cache warm; parks a
      const parked = await loadOf(a, 'parked');
      const sameTokens = [written, cold, parked].every((r) => JSON.stringify(r.ids) === JSON.stringify(first.ids));
      out.push({ quantize, coldMs: cold.ms, parkedMs: parked.ms, sameTokens });
      log(
        `500M ${quantize}: cold load (graph cache warm) ${cold.ms} ms, from the parked tier ${parked.ms} ms; ` +
          `${sameTokens ? 'the same tokens after each load' : `DIFFERENT TOKENS: ${JSON.stringify([first, written, cold, parked].map((r) => r.ids))}`}`,
      );
    } finally {
      await platform.close();
    }
  }
  return out;
}

/** The TTFT CDF of both runs, from their results as results.json keeps them (the TTFT samples included). */
async function writePlot(root: string, warm: Pick<RunResult, 'ttft'>, cold: Pick<RunResult, 'ttft'>): Promise<void> {
  const spec = cdfChartSpec(
    [
      { name: 'after a swap, parked tier on', values: warm.ttft.swap.values },
      { name: 'after a swap, parked tier off', values: cold.ttft.swap.values },
      { name: 'resident, parked tier on', values: warm.ttft.resident.values },
      { name: 'resident, parked tier off', values: cold.ttft.resident.values },
    ],
    {
      title: 'Time to first token, parked tier on and off',
      subtitle: 'Requests that waited on a swap, and requests to a resident model',
      xTitle: 'time to first token (ms, log scale)',
      yTitle: 'requests answered within',
      xLog: 10,
    },
  );
  writeFileSync(join(root, 'ttft-cdf.svg'), await renderSvg(spec));
  log(`wrote ${join(root, 'ttft-cdf.svg')}`);
}

async function main(): Promise<void> {
  const started = Date.now();
  const root = join(REPO_ROOT, 'bench', 'results', quick ? 'quick-swap' : 'swap');
  if (args['plots-only']) {
    const results = JSON.parse(readFileSync(join(root, 'results.json'), 'utf8')) as Record<'warm' | 'cold', RunResult>;
    if (!results.warm.ttft.swap.values) throw new Error(`${join(root, 'results.json')} has no TTFT samples to draw`);
    return writePlot(root, results.warm, results.cold);
  }
  const scratch = join(root, 'tmp');
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch, { recursive: true });
  const models = variants(scratch);
  const budgets = {
    totalTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchTotalTokens,
    prefillTokens: DEFAULT_SCHEDULER_CONFIG.maxBatchPrefillTokens,
  };
  const costs = models.map((m) => poolBytes(estimateModelMemory(m.dir, { quantize: m.quantize }), budgets));
  const parked = models.map((m) => estimateModelMemory(m.dir, { quantize: m.quantize }).weightBytes);
  const max = (xs: number[]) => Math.max(...xs);
  // room for two of the largest resident (the anchor model, demo-tiny, is pinned beside them), and for four parked
  // models of the mean size: the parked tier cannot hold all six that are not resident, so both tiers are used
  const anchor = poolBytes(estimateModelMemory(modelDir('demo-tiny')), budgets);
  const device = anchor + 2 * max(costs);
  const host = (4 * parked.reduce((a, b) => a + b, 0)) / parked.length;
  log(
    `${models.length} models, ${REQUESTS} requests at ${RATE}/s (Zipf 1.1), device budget ${formatBytes(device)} ` +
      `(two models and the launcher's pinned default), host budget ${formatBytes(host)} (four parked of the mean size)${quick ? ' [quick]' : ''}`,
  );
  const list = arrivals(models);
  const warm = await run('parked tier on', models, list, device, host);
  const cold = await run('parked tier off', models, list, device, 0);
  const interference = await loadInterference();
  const big = await large();

  const ms = (x: number) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 1 : 0)} ms` : '-');
  const md: string[] = [
    `# bench:swap${quick ? ' (quick)' : ''}`,
    '',
    `\`npm run bench:swap${quick ? ' -- --quick' : ''}\` on ${machine().cores} cores (${machine().cpu}), ` +
      `${new Date().toISOString().slice(0, 10)}, in ${((Date.now() - started) / 60000).toFixed(1)} min. ` +
      `${models.length} models (${models.map((m) => m.id).join(', ')}; q8 and q4 quantized at load, fp16 converted ahead), ` +
      `${REQUESTS} requests at ${RATE} per second (Poisson), each for a model drawn from Zipf(1.1), ${PROMPT_TOKENS}-token ` +
      `prompts and ${NEW_TOKENS} new tokens, over \`/generate_stream\`. One worker: device budget ${formatBytes(device)} ` +
      `(two models beside the launcher's pinned default), host budget ${formatBytes(host)} (four parked models of the mean size; it cannot hold all six that are not resident). The same ` +
      'arrivals with the parked tier on and off, in one run; each run starts with every model loaded once (graph cache warm).',
    '',
    '## Swaps and time to first token',
    '',
    table(
      [
        'run',
        'swaps from disk',
        'mean',
        'p99',
        'from parked',
        'mean',
        'p99',
        'TTFT after a swap p50',
        'p99',
        'TTFT resident p50',
        'p99',
        'tokens/s',
        'errors',
      ],
      [warm, cold].map((r) => [
        r.name,
        r.swaps.disk.count,
        ms(r.swaps.disk.meanMs),
        ms(r.swaps.disk.p99Ms),
        r.swaps.parked.count,
        ms(r.swaps.parked.meanMs),
        ms(r.swaps.parked.p99Ms),
        ms(r.ttft.swap.p50),
        ms(r.ttft.swap.p99),
        ms(r.ttft.resident.p50),
        ms(r.ttft.resident.p99),
        r.tokensPerSecond,
        r.errors,
      ]),
    ),
    '',
    `demo-small (fp32) alone, parked tier on: from disk ${warm.smallSwaps.disk.count} swaps, mean ${ms(warm.smallSwaps.disk.meanMs)}, p99 ${ms(warm.smallSwaps.disk.p99Ms)}; ` +
      `from the parked tier ${warm.smallSwaps.parked.count}, mean ${ms(warm.smallSwaps.parked.meanMs)}, p99 ${ms(warm.smallSwaps.parked.p99Ms)}. ` +
      `Parked tier off: from disk ${cold.smallSwaps.disk.count} swaps, mean ${ms(cold.smallSwaps.disk.meanMs)}, p99 ${ms(cold.smallSwaps.disk.p99Ms)}. ` +
      "Swap times are the worker's own: from taking the load to the model taking requests.",
    '',
    '![TTFT CDF](ttft-cdf.svg)',
    '',
    '## Requests to a resident model while others load',
    '',
    `demo-small resident on one worker, one request at a time (4 new tokens); the same requests while ${interference.loadsDuring} loads and unloads of demo-small and demo-tiny under other ids run on the same worker.`,
    '',
    table(
      ['', 'requests', 'TTFT p50', 'p99'],
      [
        [
          'no load going on',
          interference.quiet.length,
          ms(percentile(interference.quiet, 50)),
          ms(percentile(interference.quiet, 99)),
        ],
        [
          'other models loading',
          interference.loading.length,
          ms(percentile(interference.loading, 50)),
          ms(percentile(interference.loading, 99)),
        ],
      ],
    ),
    '',
    `p99 while loading: ${(percentile(interference.loading, 99) / percentile(interference.quiet, 99)).toFixed(2)} × the quiet p99.`,
  ];
  if (big) {
    md.push(
      '',
      '## The 500M-parameter synthetic model',
      '',
      'The same weights under three ids on one worker: the first load checks the rewrite, the second writes ' +
        "ONNX Runtime's optimised graph, the third is the cold load measured; then the first comes back from the " +
        "parked tier. Times are the worker's own; after each load, 8 greedy tokens of one prompt are compared with the first load's.",
      '',
      table(
        ['quantize', 'cold load (graph cache warm)', 'from the parked tier', 'same tokens after each load'],
        big.map((b) => [b.quantize, ms(b.coldMs), ms(b.parkedMs), b.sameTokens ? 'yes' : 'NO']),
      ),
    );
  }
  writeFileSync(join(root, 'report.md'), md.join('\n') + '\n');
  await writePlot(root, warm, cold);
  // the TTFT samples stay (to 0.1 ms), so that --plots-only can draw the CDF again
  const round = (t: RunResult['ttft']['swap']) => ({ ...t, values: t.values.map((v) => Math.round(v * 10) / 10) });
  const saved = (r: RunResult) => ({ ...r, ttft: { swap: round(r.ttft.swap), resident: round(r.ttft.resident) } });
  writeFileSync(
    join(root, 'results.json'),
    JSON.stringify(
      { machine: machine(), quick, device, host, warm: saved(warm), cold: saved(cold), interference, big },
      null,
      2,
    ) + '\n',
  );
  rmSync(scratch, { recursive: true, force: true });
  console.log(md.join('\n'));
  log(`wrote ${join(root, 'report.md')}`);
}

main().catch((err: unknown) => {
  console.error(`bench:swap: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
