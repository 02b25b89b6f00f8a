/**
 * Every metric the deployment queries is one the platform exports: the Grafana dashboard's panels and variables,
 * the Prometheus alert rules and the KEDA trigger, their names parsed out of the PromQL, against GET /metrics of a
 * platform as `npm start` starts it, once requests have made its lazily created series (the contract's exercise:
 * successes, a validation failure, a load and unload, a fallback).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  alertExpressions,
  dashboardExpressions,
  exportedFamilies,
  isExported,
  metricNames,
  renderOverlay,
  scalerQueries,
} from './support/deploy-manifests';
import { LaunchedPlatform } from './support/launched';
import { exerciseMetrics } from './support/metric-contract';

const platform = new LaunchedPlatform();
let families = new Map<string, string>();

before(async () => {
  await platform.start(['--host-memory', '1GiB']);
  await exerciseMetrics(platform);
  families = exportedFamilies(await (await fetch(`${platform.url}/metrics`)).text());
});

after(async () => {
  assert.equal(await platform.stop(), 0);
});

function assertExported(queries: { where: string; expr: string }[]): void {
  assert.ok(queries.length > 0);
  for (const { where, expr } of queries) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${where} selects no metric: ${expr}`);
    for (const name of names) assert.ok(isExported(name, families), `${where} queries ${name}, which /metrics lacks`);
  }
}

describe('the metrics the deployment queries', () => {
  it('are all in /metrics: the Grafana dashboard', () => assertExported(dashboardExpressions()));
  it('are all in /metrics: the alert rules', () => assertExported(alertExpressions()));
  it("are all in /metrics: the KEDA trigger's query", () => assertExported(scalerQueries(renderOverlay('cpu'))));
});
