/**
 * GET /metrics' text: the API's own registry, then the live workers' snapshots aggregated by prom-client's
 * AggregatorRegistry. Each worker's series carry its `worker` label, so aggregating sums nothing across workers:
 * a gauge stays per worker, and a dashboard sums where it means to.
 */
import { AggregatorRegistry, Registry } from 'prom-client';
import type { MetricsSnapshot } from '@switchyard/protocol';

/**
 * The API's metrics and the workers' in one registry. A worker family named like one of the API's, or typed
 * otherwise than the first worker that has it (another version mid-rollout), is left out rather than merged.
 */
export function clusterRegistry(own: Registry, workers: MetricsSnapshot[]): Registry {
  const types = new Map<string, string>();
  const usable = workers.map((snapshot) =>
    snapshot.filter((family) => {
      if (own.getSingleMetric(family.name) !== undefined) return false;
      const type = types.get(family.name);
      if (type === undefined) types.set(family.name, family.type);
      return type === undefined || type === family.type;
    }),
  );
  const aggregated = AggregatorRegistry.aggregate(usable);
  return Registry.merge([own, aggregated as Registry]);
}
