/**
 * The contract of GET /metrics: every metric family's name and type, and the label names of its series, as the
 * platform exports them once requests have been served (`metric-names.json`, captured from the platform before
 * the move to prom-client). Histograms count as one family: `_bucket` (less `le`), `_sum` and `_count` fold into
 * it. A labelled family that has no series yet counts by its `# TYPE` line alone: the hand-written registry gave
 * such a counter one unlabelled `name 0` sample (tagged `worker` for a worker's), which is no series of its own.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { waitFor } from './platform';
import type { LaunchedPlatform } from './launched';
import { modelDir } from './repo';

export interface MetricShape {
  name: string;
  type: string;
  /** Each label-name set seen on the family's series, names sorted, sets sorted; [] for a family with none. */
  labels: string[][];
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/** The families, types and label-name sets of a text exposition, sorted by name. */
export function metricShapes(text: string): MetricShape[] {
  const types = new Map<string, string>();
  const sets = new Map<string, Map<string, string[]>>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1], type[2]);
      sets.set(type[1], new Map());
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample) continue;
    let family = sample[1];
    if (!types.has(family)) {
      const suffix = HISTOGRAM_SUFFIXES.find((s) => family.endsWith(s));
      if (suffix) family = family.slice(0, -suffix.length);
    }
    const names = [...(sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)]
      .map((m) => m[1])
      .filter((n) => n !== 'le')
      .sort();
    const placeholder =
      types.get(family) === 'counter' && Number(sample[3]) === 0 && names.every((n) => n === 'worker');
    if (!placeholder) sets.get(family)?.set(names.join(','), names);
  }
  return [...types]
    .map(([name, type]) => {
      const labels = [...sets.get(name)!.values()];
      return { name, type, labels: labels.sort((a, b) => a.join(',').localeCompare(b.join(','))) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Serves requests that touch every metric a test can reach on a platform started with `--host-memory` and a
 * default model: successes (streamed or not), a validation failure, a second model loaded and unloaded once idle
 * (`keep_alive` 0), and a model whose directory broke, which falls back to the default model.
 * Resolves once the workers' metrics show the unload.
 */
export async function exerciseMetrics(platform: LaunchedPlatform): Promise<void> {
  const run = randomUUID().slice(0, 8);
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${platform.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...platform.auth() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  };
  const expect = (got: { status: number; text: string }, status: number) => {
    if (got.status !== status) throw new Error(`expected ${status}, got ${got.status}: ${got.text}`);
  };
  const info = JSON.parse((await call('GET', '/info')).text) as { model_id: string };
  const generate = (model: string | undefined, parameters: Record<string, unknown>, stream = false) =>
    call('POST', stream ? '/generate_stream' : '/generate', {
      inputs: 'Love is',
      parameters: { max_new_tokens: 3, ...parameters },
      ...(model ? { model } : {}),
    });

  expect(await generate(undefined, {}), 200);
  expect(await generate(undefined, {}, true), 200);
  expect(await generate(undefined, { max_new_tokens: 1_000_000 }), 422);

  const tinyId = `tiny-${run}`;
  const brokenId = `broken-${run}`;
  const brokenDir = mkdtempSync(join(tmpdir(), 'switchyard-broken-'));
  try {
    expect(await call('POST', '/admin/models', { id: tinyId, path: modelDir('demo-tiny'), keep_alive: 0 }), 201);
    expect(await generate(tinyId, {}), 200);
    cpSync(modelDir('demo-tiny'), brokenDir, { recursive: true });
    expect(await call('POST', '/admin/models', { id: brokenId, path: brokenDir, fallbacks: [info.model_id] }), 201);
    rmSync(join(brokenDir, 'onnx'), { recursive: true, force: true });
    rmSync(join(brokenDir, 'config.json'), { force: true });
    expect(await generate(brokenId, {}), 200);
    await waitFor(
      'the unload in /metrics',
      async () => (await platform.metric('switchyard_model_evictions_total', { model: tinyId })) >= 1,
      30_000,
    );
  } finally {
    for (const id of [tinyId, brokenId]) await call('DELETE', `/admin/models/${id}`);
    rmSync(brokenDir, { recursive: true, force: true });
  }
}
