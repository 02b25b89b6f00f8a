/**
 * `npm run bench:soak`: the platform under steady load for a long while (10 minutes by default), to find what only
 * time shows: lost requests, lost usage records, errors, and memory or latency that creeps. Two models (demo-small,
 * the default, and demo-tiny registered beside it) on two workers; requests arrive in an open loop (Poisson) at
 * 80 % of the capacity measured first on the same mix: 70 % demo-small, half streamed and half JSON, and one in ten
 * cancelled by its client after its first token (streams) or after a random wait (JSON). Every request has a
 * deadline; one that passes it unanswered is lost. Reported: requests lost, usage rows missing (each request the
 * API admitted leaves one; counted under the soak's own key), 5xx, and per minute the p99 latency and the resident
 * memory of the API and the workers, with their drift from the first minute to the last.
 * Writes bench/results/soak/report.md and results.json. Not part of CI (`-- --minutes 1` for a short run).
 */
import http from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import { Rng } from '@switchyard/batching';
import { loadTokenizer } from '@switchyard/models';
import { LaunchedPlatform, TEST_DATABASE_URL } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { PromptSource } from './support/prompts';
import { machine, percentile, table } from './support/stats';

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    load: { type: 'string', default: '0.8' },
  },
});
const MINUTES = Number(args.minutes);
const LOAD = Number(args.load);
const DEADLINE_MS = 120_000;
const CAPACITY_SECONDS = 30;
const CAPACITY_CLIENTS = 32;
const SAMPLE_MS = 5000;

interface Spec {
  model: 'demo-small' | 'demo-tiny';
  stream: boolean;
  cancel: boolean;
  prompt: string;
  maxNewTokens: number;
}

type Outcome = 'ok' | 'cancelled' | 'error4xx' | 'error5xx' | 'stream_error' | 'lost' | 'refused';

interface Done {
  at: number;
  outcome: Outcome;
  status: number;
  ms: number;
  tokens: number;
  cancel: boolean;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });

/** One request; never rejects. A cancelled one is aborted by the client as the spec says. */
function run(url: string, key: string, spec: Spec, rng: Rng): Promise<Done> {
  const started = performance.now();
  const body = JSON.stringify({
    model: spec.model,
    inputs: spec.prompt,
    parameters: { max_new_tokens: spec.maxNewTokens, details: true },
  });
  return new Promise<Done>((resolve) => {
    let settled = false;
    const done = (outcome: Outcome, status: number, tokens = 0) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve({ at: Date.now(), outcome, status, ms: performance.now() - started, tokens, cancel: spec.cancel });
    };
    const req = http.request(
      `${url}${spec.stream ? '/generate_stream' : '/generate'}`,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${key}`,
        },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let text = '';
        let tokens = 0;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
          if (spec.stream) {
            const events = text.split('\n\n');
            text = events.pop() ?? '';
            for (const e of events) {
              if (e.startsWith('data:{"error"')) return done('stream_error', status, tokens);
              if (e.startsWith('data:')) tokens++;
            }
            if (spec.cancel && tokens > 0) {
              req.destroy();
              done('cancelled', status, tokens);
            }
          }
        });
        res.on('end', () => {
          if (status >= 500) return done('error5xx', status);
          if (status === 429) return done('refused', status);
          if (status >= 400) return done('error4xx', status);
          if (!spec.stream)
            tokens = (JSON.parse(text) as { details?: { generated_tokens?: number } }).details?.generated_tokens ?? 0;
          done('ok', status, tokens);
        });
        res.on('error', () => done(spec.cancel ? 'cancelled' : 'lost', status, tokens));
      },
    );
    const deadline = setTimeout(() => {
      req.destroy();
      done('lost', 0);
    }, DEADLINE_MS);
    req.on('error', () => done(spec.cancel ? 'cancelled' : 'lost', 0));
    if (spec.cancel && !spec.stream) {
      setTimeout(
        () => {
          req.destroy();
          done('cancelled', 0);
        },
        50 + rng.next() * 500,
      );
    }
    req.end(body);
  });
}

/** The platform's processes (the launcher's children: the API and the workers) and their resident memory. */
function residentMiB(launcherPid: number): { api: number; workers: number } {
  const out = { api: 0, workers: 0 };
  for (const pid of childrenOf(launcherPid)) {
    let cmd: string;
    let rss: number;
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    } catch {
      continue; // gone meanwhile
    }
    if (cmd.includes('gpu-worker')) out.workers += rss;
    else out.api += rss;
  }
  return out;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const rng = new Rng(20261204);
  const prompts = {
    'demo-small': new PromptSource(loadTokenizer(modelDir('demo-small')), 'demo-small'),
    'demo-tiny': new PromptSource(loadTokenizer(modelDir('demo-tiny')), 'demo-tiny'),
  };
  const tokenizers = {
    'demo-small': loadTokenizer(modelDir('demo-small')),
    'demo-tiny': loadTokenizer(modelDir('demo-tiny')),
  };
  const spec = (): Spec => {
    const model = rng.next() < 0.7 ? 'demo-small' : 'demo-tiny';
    const length = 16 + Math.floor(rng.next() * 112);
    return {
      model,
      stream: rng.next() < 0.5,
      cancel: rng.next() < 0.1,
      prompt: tokenizers[model].decode(prompts[model].take(rng, length)),
      maxNewTokens: 16 + Math.floor(rng.next() * 112),
    };
  };

  const platform = new LaunchedPlatform();
  await platform.start(['--model-id', modelDir('demo-small'), '--num-workers', '2']);
  try {
    const admin = (path: string, body: unknown) =>
      fetch(`${platform.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platform.auth() },
        body: JSON.stringify(body),
      });
    const registered = await admin('/admin/models', { id: 'demo-tiny', path: modelDir('demo-tiny') });
    if (registered.status !== 201 && registered.status !== 409)
      throw new Error(`registering demo-tiny: ${await registered.text()}`);
    const made = (await (
      await admin('/admin/keys', { name: `soak ${new Date().toISOString()}`, scopes: ['inference'] })
    ).json()) as {
      key: string;
      id: string;
    };

    // capacity: a closed loop on the same mix, without cancellations
    console.log(`measuring capacity: ${CAPACITY_CLIENTS} clients for ${CAPACITY_SECONDS} s`);
    let capacityTokens = 0;
    let capacityRequests = 0;
    const capacityEnd = Date.now() + CAPACITY_SECONDS * 1000;
    await Promise.all(
      Array.from({ length: CAPACITY_CLIENTS }, async () => {
        while (Date.now() < capacityEnd) {
          const s = { ...spec(), cancel: false };
          const r = await run(platform.url, made.key, s, rng);
          if (r.outcome === 'ok') {
            capacityTokens += s.maxNewTokens;
            capacityRequests++;
          }
        }
      }),
    );
    const capacity = capacityRequests / CAPACITY_SECONDS;
    const rate = capacity * LOAD;
    console.log(
      `capacity ${capacity.toFixed(2)} requests/s (${(capacityTokens / CAPACITY_SECONDS).toFixed(0)} requested tokens/s); soaking at ${rate.toFixed(2)}/s for ${MINUTES} min`,
    );

    const sentBefore = capacityRequests; // capacity requests are under the same key; counted separately below
    const capacityAll = await countRows(made.id);
    const soakStart = Date.now();
    const soakEnd = soakStart + MINUTES * 60_000;
    const results: Promise<Done>[] = [];
    const memory: { at: number; api: number; workers: number }[] = [];
    const sampler = setInterval(() => memory.push({ at: Date.now(), ...residentMiB(platform.pid!) }), SAMPLE_MS);
    memory.push({ at: Date.now(), ...residentMiB(platform.pid!) });
    let next = soakStart;
    while (next < soakEnd) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      results.push(run(platform.url, made.key, spec(), rng));
      next += (-Math.log(1 - rng.next()) / rate) * 1000;
    }
    const done = await Promise.all(results);
    clearInterval(sampler);
    memory.push({ at: Date.now(), ...residentMiB(platform.pid!) });

    // every admitted request leaves one usage row, written within a second or two
    const admitted = done.filter((d) => d.outcome !== 'lost').length;
    let rows = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      rows = (await countRows(made.id)) - capacityAll;
      if (rows >= admitted) break;
      await new Promise((r) => setTimeout(r, 500));
    }

    const count = (o: Outcome) => done.filter((d) => d.outcome === o).length;
    const minutes = Array.from({ length: Math.ceil(MINUTES) }, (_, m) => {
      const from = soakStart + m * 60_000;
      const inMinute = done.filter((d) => d.at >= from && d.at < from + 60_000);
      const latencies = inMinute.filter((d) => d.outcome === 'ok').map((d) => d.ms);
      const mem = memory.filter((s) => s.at >= from && s.at < from + 60_000);
      const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
      return {
        minute: m + 1,
        requests: inMinute.length,
        p50: latencies.length ? percentile(latencies, 50) : 0,
        p99: latencies.length ? percentile(latencies, 99) : 0,
        apiMiB: mean(mem.map((s) => s.api)),
        workersMiB: mean(mem.map((s) => s.workers)),
      };
    });
    const first = minutes[0];
    const last = minutes[minutes.length - 1];
    const summary = {
      minutes: MINUTES,
      load: LOAD,
      capacityRequestsPerSecond: capacity,
      rate,
      sent: done.length,
      ok: count('ok'),
      cancelled: count('cancelled'),
      refused429: count('refused'),
      errors4xx: count('error4xx'),
      errors5xx: count('error5xx'),
      streamErrors: count('stream_error'),
      lost: count('lost'),
      usageRows: rows,
      usageRowsMissing: Math.max(0, admitted - rows),
      p99DriftRatio: first.p99 > 0 ? last.p99 / first.p99 : null,
      apiRssDriftMiB: last.apiMiB - first.apiMiB,
      workersRssDriftMiB: last.workersMiB - first.workersMiB,
      capacityRequests: sentBefore,
    };
    const root = join(REPO_ROOT, 'bench', 'results', 'soak');
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'results.json'), JSON.stringify({ machine: machine(), summary, minutes }, null, 2) + '\n');
    const fmt = (v: number, d = 0) => v.toFixed(d);
    const md = [
      '# bench:soak',
      '',
      `\`npm run bench:soak${MINUTES !== 10 ? ` -- --minutes ${MINUTES}` : ''}\` on ${machine().cores} cores (${machine().cpu}), ${new Date().toISOString().slice(0, 10)}, in ${((Date.now() - started) / 60000).toFixed(1)} min. ` +
        `The platform (launcher, API, two workers) with demo-small (the default) and demo-tiny; capacity measured first with ${CAPACITY_CLIENTS} closed-loop clients for ${CAPACITY_SECONDS} s on the same mix: ` +
        `${fmt(capacity, 2)} requests/s. Then ${MINUTES} min of Poisson arrivals at ${fmt(LOAD * 100)} % of it (${fmt(rate, 2)}/s): 70 % demo-small, half streamed, one in ten cancelled by its client, ` +
        `prompts of 16 to 127 tokens and 16 to 127 new tokens, each with a ${DEADLINE_MS / 1000} s deadline.`,
      '',
      table(
        ['sent', 'answered', 'cancelled', '429', '4xx', '5xx', 'stream errors', 'lost', 'usage rows missing'],
        [
          [
            summary.sent,
            summary.ok,
            summary.cancelled,
            summary.refused429,
            summary.errors4xx,
            summary.errors5xx,
            summary.streamErrors,
            summary.lost,
            summary.usageRowsMissing,
          ],
        ],
      ),
      '',
      '## Per minute',
      '',
      table(
        ['minute', 'requests', 'latency p50', 'p99', 'API RSS', 'workers RSS'],
        minutes.map((m) => [
          m.minute,
          m.requests,
          `${fmt(m.p50)} ms`,
          `${fmt(m.p99)} ms`,
          `${fmt(m.apiMiB)} MiB`,
          `${fmt(m.workersMiB)} MiB`,
        ]),
      ),
      '',
      `Drift from the first minute to the last: p99 latency ${summary.p99DriftRatio === null ? '-' : `${fmt(summary.p99DriftRatio, 2)}×`}, ` +
        `API RSS ${summary.apiRssDriftMiB >= 0 ? '+' : ''}${fmt(summary.apiRssDriftMiB, 1)} MiB, workers' RSS ${summary.workersRssDriftMiB >= 0 ? '+' : ''}${fmt(summary.workersRssDriftMiB, 1)} MiB.`,
      '',
    ];
    writeFileSync(join(root, 'report.md'), md.join('\n'));
    console.log(md.join('\n'));
  } finally {
    await platform.stop();
  }
}

async function countRows(keyId: string): Promise<number> {
  const client = new Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM usage_records WHERE key_id = $1', [
      keyId,
    ]);
    return Number(rows[0].n);
  } finally {
    await client.end();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
