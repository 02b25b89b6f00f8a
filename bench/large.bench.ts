/**
 * `npm run bench:large`: real-size models. On a synthetic 500M-parameter Llama (random weights, the demo models'
 * ONNX layout; made with ../shared/tools/make-synthetic-llama.py when missing) it measures, in one run:
 * - the raw decode loop at batch 1 and 32 in fp32, q8 and q4 (quantized at load), with each load's time and
 *   resident memory;
 * - the platform end to end (launcher, API, one worker) at 1 and 32 clients against that loop at the same batch;
 * - llama.cpp on the same weights, when `--llama-server` and `--gguf` are given (its server at 1 and 32 clients on
 *   the same load generator, and its resident memory);
 * - a 720M-parameter model (2.8 GiB, over protobuf's 2 GiB limit): load time, resident memory, the attention
 *   rewrite, a generation;
 * and on demo-small, the quality of q8 and q4: held-out perplexity (the GPL-3 text Debian ships, which the demo
 * models never saw) and greedy agreement with fp32 on the goldens.
 * Writes bench/results/large/report.md and results.json. `-- --quick` runs it all on demo-small, tiny (CI's smoke).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Engine, Rng, defaultParameters } from '@switchyard/batching';
import { formatBytes, loadModel, LoadedModel, Quantize } from '@switchyard/models';
import { freePort, LaunchedPlatform } from '../test/support/launched';
import { loadGoldens, modelDir, REPO_ROOT } from '../test/support/repo';
import { closedLoop, LoadResult, RequestSpec, Target } from './loadgen';
import { rawLoop } from './raw-loop';
import { perplexity } from './support/perplexity';
import { PromptSource } from './support/prompts';
import { machine, table } from './support/stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'models-dir': { type: 'string' },
    'llama-server': { type: 'string' },
    gguf: { type: 'string' },
    'skip-720m': { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const MODELS_DIR = resolve(args['models-dir'] ?? join(REPO_ROOT, 'bench', 'models'));
const TOOL = resolve(REPO_ROOT, '..', 'shared', 'tools', 'make-synthetic-llama.py');
const SIZES = {
  '500m': ['1536', '20', '12', '2', '4096'],
  '720m': ['2048', '16', '16', '4', '5632'],
} as const;
const VARIANTS: Quantize[] = ['none', 'q8', 'q4'];
const PROMPT_TOKENS = quick ? 16 : 64;
const NEW_TOKENS = quick ? 8 : 128;
const CLIENTS = quick ? [1, 4] : [1, 32];
const ROUNDS = quick ? 1 : 2;
/** A graph cache of this run's own, so that each first load measures quantizing and checking; removed at the end. */
const CACHE_DIR = join(MODELS_DIR, `cache-${process.pid}`);

function log(line: string): void {
  console.log(`bench:large: ${line}`);
}

/** The synthetic model's directory, made first if it is missing. */
function synthetic(size: keyof typeof SIZES): string {
  const dir = join(MODELS_DIR, `llama-${size}`);
  if (existsSync(join(dir, 'onnx', 'model.onnx'))) return dir;
  if (!existsSync(TOOL)) throw new Error(`${dir} is missing and so is ${TOOL}, which makes it`);
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { stdio: 'ignore' });
  } catch {
    throw new Error(
      "making the synthetic models needs Debian's python3-torch and python3-onnx: apt-get install -y python3-torch python3-onnx",
    );
  }
  log(`making ${dir} (a minute or two)`);
  mkdirSync(MODELS_DIR, { recursive: true });
  execFileSync('/usr/bin/python3', [TOOL, dir, ...SIZES[size]], { stdio: 'inherit' });
  return dir;
}

/** Resident memory of a process now, and its peak, from /proc. */
function residentOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** A load's resident growth, measured in a process of its own (test/support/measure-load.ts). */
function measureLoad(dir: string, quantize: Quantize): { growth: number; estimate: number } {
  const script = join(REPO_ROOT, 'dist', 'test', 'support', 'measure-load.js');
  const out = execFileSync(process.execPath, ['--expose-gc', script, dir, CACHE_DIR, quantize], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').at(-1)!) as { growth: number; estimate: number };
}

function prompts(model: LoadedModel, count: number): number[][] {
  const source = new PromptSource(model.tokenizer);
  const rng = new Rng(5);
  return Array.from({ length: count }, () => source.take(rng, PROMPT_TOKENS));
}

interface RawRow {
  quantize: Quantize;
  dtype: string;
  attention: string;
  loadMs: number;
  cachedLoadMs: number;
  residentBytes: number;
  estimateBytes: number;
  /** Generated tokens over the whole run, prefill included (the work a client's request costs). */
  tokensPerSecond: Record<number, number>;
  /** Decode steps only: rows × steps per second. */
  decodeTokensPerSecond: Record<number, number>;
}

/** Loads each variant twice (the second reads the graph cache) and runs the raw loop at each batch. */
async function rawLoops(dir: string): Promise<RawRow[]> {
  const rows: RawRow[] = [];
  for (const quantize of VARIANTS) {
    const first = await loadModel(dir, { quantize, cacheDir: CACHE_DIR, onProgress: (m) => log(`  ${m}`) });
    const loadMs = first.loadMs;
    await first.release();
    const { growth: residentBytes } = measureLoad(dir, quantize);
    const model = await loadModel(dir, { quantize, cacheDir: CACHE_DIR });
    const tokensPerSecond: Record<number, number> = {};
    const decodeTokensPerSecond: Record<number, number> = {};
    for (const batch of CLIENTS) {
      await rawLoop(model, prompts(model, batch).slice(0, batch), 4); // warm-up
      const result = await rawLoop(model, prompts(model, batch), NEW_TOKENS);
      tokensPerSecond[batch] = result.tokensPerSecond;
      decodeTokensPerSecond[batch] = (batch * 1000) / result.msPerStep;
      log(
        `  raw ${model.info.dtype} batch ${batch}: ${result.tokensPerSecond.toFixed(1)} tokens/s, ` +
          `decode alone ${decodeTokensPerSecond[batch].toFixed(1)}`,
      );
    }
    rows.push({
      quantize,
      dtype: model.info.dtype,
      attention: model.info.attention,
      loadMs,
      cachedLoadMs: model.loadMs,
      residentBytes,
      estimateBytes: model.memory.weightBytes,
      tokensPerSecond,
      decodeTokensPerSecond,
    });
    await model.release();
  }
  return rows;
}

function workload(model: LoadedModel, clients: number): RequestSpec[][] {
  const source = new PromptSource(model.tokenizer);
  const rng = new Rng(77 + clients);
  return Array.from({ length: clients }, () =>
    Array.from({ length: ROUNDS }, () => ({
      prompt: model.tokenizer.decode(source.take(rng, PROMPT_TOKENS)),
      maxNewTokens: NEW_TOKENS,
    })),
  );
}

interface E2eRow {
  quantize: Quantize;
  results: Record<number, LoadResult>;
  workerResident: { rss: number; peak: number };
  kvBudgetBytes: number;
}

/** The platform with one worker and the model quantized at load, at each client count. */
async function endToEnd(dir: string, quantize: Quantize, tokenizerModel: LoadedModel): Promise<E2eRow> {
  const platform = new LaunchedPlatform();
  await platform.start([
    '--model-id',
    dir,
    '--quantize',
    quantize,
    '--cache-dir',
    CACHE_DIR,
    '--max-concurrent-requests',
    '256',
  ]);
  try {
    const target: Target = {
      name: `switchyard ${quantize}`,
      url: platform.url,
      headers: platform.auth(),
      mode: 'stream',
    };
    const results: Record<number, LoadResult> = {};
    for (const clients of CLIENTS) {
      const load = workload(tokenizerModel, clients);
      await closedLoop(target, [[load[0][0]]]); // warm-up
      results[clients] = await closedLoop(target, load);
      log(
        `  platform ${quantize} ${clients} clients: ${results[clients].tokensPerSecond.toFixed(1)} tokens/s, ${results[clients].errors} errors`,
      );
    }
    const workers = (await (await fetch(`${platform.url}/admin/workers`, { headers: platform.auth() })).json()) as {
      pid: number;
    }[];
    const workerResident = residentOf(workers[0].pid);
    const memory = tokenizerModel.memory;
    return { quantize, results, workerResident, kvBudgetBytes: 8192 * memory.kvBytesPerToken };
  } finally {
    await platform.stop();
  }
}

interface PeerRow {
  results: Record<number, LoadResult>;
  resident: { rss: number; peak: number };
  /** llama-bench's decode rate for one sequence (tg128, 2 threads), when it sits beside the server. */
  benchDecode: number | null;
}

/** llama.cpp's own measure of one sequence's decode rate: `llama-bench -p 0 -n 128 -t 2`. */
function llamaBench(server: string, gguf: string): number | null {
  const bench = join(resolve(server, '..'), 'llama-bench');
  if (!existsSync(bench)) return null;
  const out = execFileSync(
    bench,
    ['-m', gguf, '-p', '0', '-n', String(NEW_TOKENS), '-t', '2', '-r', '3', '-o', 'json'],
    { encoding: 'utf8' },
  );
  const rows = JSON.parse(out) as { avg_ts: number }[];
  return rows[0]?.avg_ts ?? null;
}

/** llama.cpp's server on the GGUF, with as many parallel slots as clients, on the same load generator. */
async function llamaServer(server: string, gguf: string, tokenizerModel: LoadedModel): Promise<PeerRow> {
  const results: Record<number, LoadResult> = {};
  let peak = { rss: 0, peak: 0 };
  for (const clients of CLIENTS) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      server,
      [
        '-m',
        gguf,
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '-t',
        '2',
        '-np',
        String(clients),
        '-c',
        String(clients * (PROMPT_TOKENS + NEW_TOKENS + 64)),
        '-cb',
      ],
      { stdio: 'ignore' },
    );
    try {
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; ; i++) {
        const ok = await fetch(`${url}/health`).then(
          (r) => r.ok,
          () => false,
        );
        if (ok) break;
        if (i > 600) throw new Error('llama-server did not come up');
        await new Promise((r) => setTimeout(r, 100));
      }
      const target: Target = { name: 'llama.cpp', url, mode: 'openai', keepAlive: false };
      const load = workload(tokenizerModel, clients);
      await closedLoop(target, [[load[0][0]]]);
      results[clients] = await closedLoop(target, load);
      log(
        `  llama.cpp ${clients} clients: ${results[clients].tokensPerSecond.toFixed(1)} tokens/s, ${results[clients].errors} errors`,
      );
      const now = residentOf(child.pid!);
      if (now.peak > peak.peak) peak = now;
    } finally {
      child.kill('SIGTERM');
    }
  }
  return { results, resident: peak, benchDecode: llamaBench(server, gguf) };
}

interface LargeRow {
  loadMs: number;
  cachedLoadMs: number;
  residentBytes: number;
  attention: string;
  fusionSkipped: string | null;
  generated: number;
}

/** The 720M model: loads (rewrite checked), loads again from the cache, and generates through the engine. */
async function large720(dir: string): Promise<LargeRow> {
  const first = await loadModel(dir, { cacheDir: CACHE_DIR, onProgress: (m) => log(`  ${m}`) });
  const loadMs = first.loadMs;
  await first.release();
  const { growth: residentBytes } = measureLoad(dir, 'none');
  const model = await loadModel(dir, { cacheDir: CACHE_DIR });
  const engine = new Engine(model);
  const result = await engine.generate({
    id: 'large',
    inputIds: prompts(model, 1)[0],
    parameters: defaultParameters({ maxNewTokens: 16 }),
  });
  await model.release();
  return {
    loadMs,
    cachedLoadMs: model.loadMs,
    residentBytes,
    attention: model.info.attention,
    fusionSkipped: model.info.fusionSkipped,
    generated: result.tokens.length,
  };
}

interface QualityRow {
  quantize: Quantize;
  perplexity: number;
  tokens: number;
  agreement: number;
}

/** demo-small's held-out perplexity and greedy agreement with fp32 (the goldens) per quantization. */
async function quality(): Promise<QualityRow[]> {
  const text = readFileSync('/usr/share/common-licenses/GPL-3', 'utf8');
  const goldens = loadGoldens('demo-small');
  const rows: QualityRow[] = [];
  for (const quantize of VARIANTS) {
    const model = await loadModel(modelDir('demo-small'), { quantize, cacheDir: CACHE_DIR });
    const p = await perplexity(model, text, 256, quick ? 4 : Infinity);
    const engine = new Engine(model);
    let agreement = 0;
    for (const c of goldens.cases.slice(0, 10)) {
      const result = await engine.generate({
        id: `q${quantize}`,
        inputIds: c.prompt_ids,
        parameters: defaultParameters({ maxNewTokens: 16 }),
      });
      const ids = result.tokens.map((t) => t.token.id);
      if (JSON.stringify(ids) === JSON.stringify(c.greedy_ids.slice(0, ids.length))) agreement++;
    }
    rows.push({ quantize, perplexity: p.perplexity, tokens: p.tokens, agreement });
    log(`  quality ${model.info.dtype}: perplexity ${p.perplexity.toFixed(3)}, goldens ${agreement}/10`);
    await model.release();
  }
  return rows;
}

const ratio = (a: number, b: number) => (b > 0 ? (a / b).toFixed(2) : '-');
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

async function main(): Promise<void> {
  const started = Date.now();
  const dir500 = quick ? modelDir('demo-small') : synthetic('500m');
  log(`on ${dir500} (${machine().cores} cores, ${machine().cpu})${quick ? ' [quick]' : ''}`);
  const quality_ = await quality();
  const raw = await rawLoops(dir500);
  const tokenizerModel = await loadModel(dir500, { quantize: 'q8', cacheDir: CACHE_DIR });
  const e2e: E2eRow[] = [];
  for (const quantize of VARIANTS) e2e.push(await endToEnd(dir500, quantize, tokenizerModel));
  const peer =
    args['llama-server'] && args.gguf ? await llamaServer(args['llama-server'], args.gguf, tokenizerModel) : null;
  await tokenizerModel.release();
  const big = quick || args['skip-720m'] ? null : await large720(synthetic('720m'));

  const byVariant = (q: Quantize) => raw.find((r) => r.quantize === q)!;
  const fp32 = byVariant('none');
  const md: string[] = [
    `# bench:large${quick ? ' (quick)' : ''}`,
    '',
    `\`npm run bench:large${quick ? ' -- --quick' : ''}\` on ${machine().cores} cores (${machine().cpu}), Node ${machine().node}, ` +
      `${new Date().toISOString().slice(0, 10)}, in ${((Date.now() - started) / 60000).toFixed(1)} min. Model: ${quick ? 'demo-small' : 'the synthetic 500M-parameter Llama (1536 hidden, 20 layers, 12 heads, 2 KV heads, FFN 4096)'}. ` +
      `Prompts of ${PROMPT_TOKENS} tokens, ${NEW_TOKENS} new tokens, greedy; every ratio is of figures from this one run.`,
    '',
    '## Quality (demo-small)',
    '',
    "Held-out perplexity on `/usr/share/common-licenses/GPL-3` (Debian's GPL text, which the demo models never " +
      'trained on), in windows of 256 tokens; greedy agreement with the fp32 goldens over the first 16 tokens of 10 prompts.',
    '',
    table(
      ['quantize', 'perplexity', 'vs fp32', 'tokens', 'goldens agreeing'],
      quality_.map((q) => [
        q.quantize,
        q.perplexity,
        `${((q.perplexity / quality_[0].perplexity - 1) * 100).toFixed(2)} %`,
        q.tokens,
        `${q.agreement}/10`,
      ]),
    ),
    '',
    '## Raw decode loop',
    '',
    "The rewritten graph's `session.run` loop with nothing around it (bench/raw-loop.ts): one prefill of the batch's " +
      'prompts, then decode steps. "decode" counts the steps alone; "with prefill" the whole run, the work the end-to-end ' +
      'clients ask for. The first load quantizes (or, for fp32, checks the rewrite) into an empty graph cache; the ' +
      "cached load reads it. Resident: the growth of a load in a process of its own; estimate: the model's own.",
    '',
    table(
      [
        'weights',
        'attention',
        'first load',
        'cached load',
        'resident',
        'estimate',
        ...CLIENTS.flatMap((b) => [`batch ${b} decode tok/s`, 'vs fp32', `with prefill`]),
      ],
      raw.map((r) => [
        r.dtype,
        r.attention,
        `${(r.loadMs / 1000).toFixed(1)} s`,
        `${(r.cachedLoadMs / 1000).toFixed(2)} s`,
        mib(r.residentBytes),
        mib(r.estimateBytes),
        ...CLIENTS.flatMap((b) => [
          r.decodeTokensPerSecond[b],
          ratio(r.decodeTokensPerSecond[b], fp32.decodeTokensPerSecond[b]),
          r.tokensPerSecond[b],
        ]),
      ]),
    ),
    '',
    '## End to end',
    '',
    `The platform (launcher, API, one worker, Redis) with \`--quantize\`, ${ROUNDS} requests per client over \`/generate_stream\`, against the raw loop at the same batch, prefill included on both sides.`,
    '',
    table(
      ['quantize', ...CLIENTS.flatMap((c) => [`${c} clients tok/s`, `vs raw`]), 'errors', 'worker resident'],
      e2e.map((e) => [
        e.quantize,
        ...CLIENTS.flatMap((c) => [
          e.results[c].tokensPerSecond,
          ratio(e.results[c].tokensPerSecond, byVariant(e.quantize).tokensPerSecond[c]),
        ]),
        CLIENTS.reduce((n, c) => n + e.results[c].errors, 0),
        mib(e.workerResident.rss),
      ]),
    ),
  ];
  if (peer) {
    const q8 = e2e.find((e) => e.quantize === 'q8')!;
    md.push(
      '',
      '## Against llama.cpp',
      '',
      `llama.cpp's server (\`${args['llama-server']}\`, 2 threads, one slot per client, continuous batching) on \`${args.gguf}\` (the same weights converted to GGUF, Q8_0), on the same load generator (\`/v1/completions\`, streamed), against Switchyard with \`--quantize q8\`.`,
      '',
      table(
        ['clients', 'llama.cpp tok/s', 'llama.cpp errors', 'switchyard q8 tok/s', 'ratio'],
        CLIENTS.map((c) => [
          c,
          peer.results[c].tokensPerSecond,
          peer.results[c].errors,
          q8.results[c].tokensPerSecond,
          ratio(q8.results[c].tokensPerSecond, peer.results[c].tokensPerSecond),
        ]),
      ),
      ...(peer.benchDecode === null
        ? []
        : [
            '',
            `One sequence's decode alone: llama-bench (tg${NEW_TOKENS}, 2 threads) ${peer.benchDecode.toFixed(1)} tokens/s; ` +
              `Switchyard's raw loop in q8 ${byVariant('q8').decodeTokensPerSecond[1].toFixed(1)} ` +
              `(${ratio(byVariant('q8').decodeTokensPerSecond[1], peer.benchDecode)}).`,
          ]),
      '',
      `Resident memory: llama.cpp ${mib(peer.resident.peak)} at its peak; the Switchyard worker ${mib(q8.workerResident.rss)} ` +
        `(peak ${mib(q8.workerResident.peak)}), whose KV budget is ${mib(q8.kvBudgetBytes)} (8,192 tokens of float32 keys and values).`,
    );
  }
  if (big) {
    md.push(
      '',
      "## 720M parameters (2.8 GiB, over protobuf's 2 GiB limit)",
      '',
      table(
        ['attention', 'first load (rewrite checked)', 'cached load', 'resident', 'generated'],
        [
          [
            big.attention + (big.fusionSkipped ? ` (${big.fusionSkipped})` : ''),
            `${(big.loadMs / 1000).toFixed(1)} s`,
            `${(big.cachedLoadMs / 1000).toFixed(1)} s`,
            formatBytes(big.residentBytes),
            `${big.generated} tokens`,
          ],
        ],
      ),
    );
  }
  const out = join(REPO_ROOT, 'bench', 'results', quick ? 'quick-large' : 'large');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'report.md'), md.join('\n') + '\n');
  writeFileSync(
    join(out, 'results.json'),
    JSON.stringify({ machine: machine(), quick, quality: quality_, raw, e2e, peer, big }, null, 2) + '\n',
  );
  console.log(md.join('\n'));
  log(`wrote ${join(out, 'report.md')}`);
  rmSync(CACHE_DIR, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(`bench:large: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
