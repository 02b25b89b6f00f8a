/**
 * GET /metrics on the platform as `npm start` starts it, once requests have been served: every family, type and
 * label-name set of the contract (`support/metric-names.json`, captured from the hand-written registry before the
 * move to prom-client) is there, with the workers' series tagged `worker`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LaunchedPlatform } from './support/launched';
import { exerciseMetrics, MetricShape, metricShapes } from './support/metric-contract';
import { REPO_ROOT } from './support/repo';

const platform = new LaunchedPlatform();
const contract = JSON.parse(readFileSync(join(REPO_ROOT, 'test/support/metric-names.json'), 'utf8')) as MetricShape[];
let text = '';

before(async () => {
  await platform.start(['--host-memory', '1GiB']);
  await exerciseMetrics(platform);
  const res = await fetch(`${platform.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain;.*version=0\.0\.4/);
  text = await res.text();
});

after(async () => {
  assert.equal(await platform.stop(), 0);
});

describe('GET /metrics', () => {
  it('has every family, type and label set of the contract', () => {
    const served = new Map(metricShapes(text).map((m) => [m.name, m]));
    for (const expected of contract) {
      const got = served.get(expected.name);
      assert.ok(got, `${expected.name} is missing`);
      assert.equal(got.type, expected.type, expected.name);
      const sets = new Set(got.labels.map((s) => s.join(',')));
      for (const labels of expected.labels) {
        assert.ok(
          sets.has(labels.join(',')),
          `${expected.name}{${labels.join(',')}} is missing: has ${[...sets].join(',')}`,
        );
      }
    }
  });

  it('serves each family once, with values the requests account for', async () => {
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    assert.equal(new Set(types).size, types.length);
    assert.ok((await platform.metric('tgi_request_count')) >= 5);
    assert.ok((await platform.metric('tgi_request_failure', { err: 'validation' })) >= 1);
    assert.ok((await platform.metric('tgi_batch_inference_success', { method: 'decode' })) >= 1);
    assert.ok((await platform.metric('tgi_batch_forward_duration_count', { method: 'prefill' })) >= 1);
    assert.equal(await platform.metric('switchyard_dependency_up'), 2);
  });
});
