/**
 * The load generator: drives an HTTP server that speaks TGI's `/generate_stream` (Switchyard) or `/generate`
 * (the transformers.js peer) with an open loop (Poisson arrivals) or a closed loop (N clients, each sending its
 * next request when the last one ends). It measures generated tokens/s, time to first token, inter-token latency
 * and end-to-end latency, and errors.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { Rng } from '@switchyard/batching';
import { percentile } from './support/stats';

export interface Target {
  name: string;
  url: string;
  headers?: Record<string, string>;
  /**
   * `stream`: SSE on /generate_stream (TTFT and ITL measured); `json`: /generate (TTFT is the whole answer);
   * `openai`: SSE on /v1/completions, greedy, for servers that speak OpenAI's API only (llama.cpp's server).
   */
  mode: 'stream' | 'json' | 'openai';
  /** The `model` an `openai` target is asked for. */
  model?: string;
  /**
   * Reuse connections (the default). Off for servers that close idle ones quickly (llama.cpp's closes after 5 s),
   * where a reused socket can be closed under a request.
   */
  keepAlive?: boolean;
}

export interface RequestSpec {
  prompt: string;
  maxNewTokens: number;
  /** The model to ask for (Switchyard's `model`); the server's default when absent. */
  model?: string;
}

export interface Sample {
  /** Milliseconds from sending to the first token (the whole answer for JSON targets). */
  ttft: number;
  latency: number;
  tokens: number;
  /** Mean milliseconds between tokens after the first. */
  itl: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
}

export interface LoadResult {
  target: string;
  requests: number;
  errors: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttft: Percentiles;
  itl: Percentiles;
  latency: Percentiles;
  /** Every request's latency, for CDF plots. */
  latencies: number[];
}

function percentiles(values: number[]): Percentiles {
  return { p50: percentile(values, 50), p90: percentile(values, 90), p99: percentile(values, 99) };
}

export function summarize(target: string, seconds: number, samples: Sample[], errors: number): LoadResult {
  const tokens = samples.reduce((s, x) => s + x.tokens, 0);
  return {
    target,
    requests: samples.length,
    errors,
    tokens,
    seconds,
    tokensPerSecond: tokens / seconds,
    ttft: percentiles(samples.map((s) => s.ttft)),
    itl: percentiles(samples.filter((s) => s.tokens > 1).map((s) => s.itl)),
    latency: percentiles(samples.map((s) => s.latency)),
    latencies: samples.map((s) => s.latency),
  };
}

/** A streamed request's sample from its send, first-token and end times (performance.now()) and its tokens. */
export function streamedSample(sent: number, first: number, done: number, tokens: number): Sample {
  return { ttft: first - sent, latency: done - sent, tokens, itl: tokens > 1 ? (done - first) / (tokens - 1) : 0 };
}

/**
 * Keep-alive connections for every request of a run, unbounded so that N clients hold N sockets. The client is
 * plain `node:http` on raw chunks: it shares the machine with the server it measures, so it does as little as it
 * can per token (fetch's web streams cost several times more CPU per event).
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
const freshConnections = new http.Agent({ keepAlive: false, maxSockets: Infinity });

/** One request; resolves with its sample, rejects on an HTTP or stream error. */
export function send(target: Target, spec: RequestSpec): Promise<Sample> {
  const sent = performance.now();
  const path = target.mode === 'stream' ? '/generate_stream' : target.mode === 'json' ? '/generate' : '/v1/completions';
  const body =
    target.mode === 'openai'
      ? JSON.stringify({
          model: spec.model ?? target.model ?? 'default',
          prompt: spec.prompt,
          max_tokens: spec.maxNewTokens,
          temperature: 0,
          stream: true,
        })
      : JSON.stringify({
          inputs: spec.prompt,
          parameters: { max_new_tokens: spec.maxNewTokens },
          ...(spec.model ? { model: spec.model } : {}),
        });
  return new Promise<Sample>((resolve, reject) => {
    const req = http.request(
      `${target.url}${path}`,
      {
        method: 'POST',
        agent: target.keepAlive === false ? freshConnections : agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...target.headers },
      },
      (res) => {
        res.setEncoding('latin1'); // only ASCII is looked at: event boundaries and the error prefix
        let text = '';
        if (res.statusCode !== 200) {
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`)));
          return;
        }
        if (target.mode === 'json') {
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            const latency = performance.now() - sent;
            const parsed = JSON.parse(text) as { details?: { generated_tokens?: number } };
            const tokens = parsed.details?.generated_tokens ?? 0;
            resolve({ ttft: latency, latency, tokens, itl: tokens > 1 ? latency / tokens : 0 });
          });
          return;
        }
        let first = 0;
        let tokens = 0;
        let failed: Error | null = null;
        res.on('data', (chunk: string) => {
          text = text.length === 0 ? chunk : text + chunk;
          let start = 0;
          let end: number;
          while ((end = text.indexOf('\n\n', start)) >= 0) {
            if (text.startsWith('data:{"error"', start)) failed ??= new Error(text.slice(start + 5, end));
            else if (target.mode === 'openai') {
              // one chunk per token; the last may carry only the finish reason, and [DONE] ends the stream
              const event = text.slice(start, end);
              if (event.startsWith('data: {') && !event.includes('"text":""')) {
                if (first === 0) first = performance.now();
                tokens++;
              }
            } else if (text.startsWith('data:', start)) {
              if (first === 0) first = performance.now();
              tokens++;
            }
            start = end + 2;
          }
          text = start === text.length ? '' : text.slice(start);
        });
        res.on('end', () => {
          if (failed) return reject(failed);
          resolve(streamedSample(sent, first, performance.now(), tokens));
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * N clients, each sending its requests one after another; all clients start at once. `one` runs a request:
 * over HTTP by default, or in process (the engine alone) for a baseline on the same loop.
 */
export async function closedLoop(
  target: Target | string,
  perClient: RequestSpec[][],
  one: (spec: RequestSpec) => Promise<Sample> = (spec) => send(target as Target, spec),
): Promise<LoadResult> {
  const name = typeof target === 'string' ? target : target.name;
  const samples: Sample[] = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    perClient.map(async (list) => {
      for (const spec of list) {
        try {
          samples.push(await one(spec));
        } catch (err) {
          if (errors++ < 3) console.error(`${name}: ${(err as Error).message}`);
        }
      }
    }),
  );
  return summarize(name, (performance.now() - started) / 1000, samples, errors);
}

/** Requests sent at their arrival times (milliseconds from the start), whatever is still running. */
export async function openLoop(target: Target, arrivals: { at: number; spec: RequestSpec }[]): Promise<LoadResult> {
  const samples: Sample[] = [];
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    arrivals.map(
      ({ at, spec }) =>
        new Promise<void>((resolve) => {
          setTimeout(
            () => {
              send(target, spec).then(
                (s) => {
                  samples.push(s);
                  resolve();
                },
                (err: Error) => {
                  if (errors++ < 3) console.error(`${target.name}: ${err.message}`);
                  resolve();
                },
              );
            },
            Math.max(0, at - (performance.now() - started)),
          );
        }),
    ),
  );
  return summarize(target.name, (performance.now() - started) / 1000, samples, errors);
}

/** Poisson arrivals at `rate` per second. */
export function poisson(rng: Rng, count: number, rate: number, spec: (i: number) => RequestSpec) {
  const arrivals: { at: number; spec: RequestSpec }[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    t += -Math.log(1 - rng.next()) / rate;
    arrivals.push({ at: t * 1000, spec: spec(i) });
  }
  return arrivals;
}

/** `max_new_tokens` drawn uniformly from [min, max]. */
export function uniformTokens(rng: Rng, min: number, max: number): () => number {
  return () => min + Math.floor(rng.next() * (max - min + 1));
}

/** A server's `/metrics` as name+labels → value, to diff before and after a run. */
export async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

/** What changed in `/metrics` between two scrapes, for the counters a report shows. */
export function metricDelta(before: Map<string, number>, after: Map<string, number>, names: string[]) {
  const delta: Record<string, number> = {};
  for (const [key, value] of after) {
    const name = key.replace(/\{.*$/, '');
    if (!names.includes(name)) continue;
    delta[key] = value - (before.get(key) ?? 0);
  }
  return delta;
}
