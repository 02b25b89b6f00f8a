/**
 * The metrics snapshot a worker publishes to Redis (`metrics:<id>`, beside its heartbeat) and the API aggregates
 * into GET /metrics: prom-client's `registry.getMetricsAsJSON()`, the one parser that accepts it, the bounds
 * both sides' histograms share, and the table form in which both declare their metrics.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import { parseJson } from './parse';

/** Upper bounds for durations in seconds, like TGI's; +Inf is implicit. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const snapshotSchema = z.array(
  z.object({
    name: z.string().regex(METRIC_NAME),
    help: z.string(),
    type: z.enum(['counter', 'gauge', 'histogram']),
    // prom-client's AggregatorRegistry throws on a name it does not know
    aggregator: z.enum(['sum', 'first', 'min', 'max', 'average', 'omit']),
    values: z.array(
      z.object({
        // JSON writes NaN and ±Inf as null
        value: z
          .number()
          .nullable()
          .transform((v) => v ?? NaN),
        labels: z.record(z.string().regex(LABEL_NAME), z.union([z.string(), z.number()])),
        // a histogram's series: name_bucket (labelled `le`), name_sum, name_count
        metricName: z.string().regex(METRIC_NAME).optional(),
      }),
    ),
  }),
);

/** One process's metrics, as prom-client's `Registry.getMetricsAsJSON()` gives them (less exemplars). */
export type MetricsSnapshot = z.output<typeof snapshotSchema>;

/**
 * A snapshot as read from Redis, or null for a value that is not one (not JSON, or another shape: a half-written
 * key, a foreign one, another version's), so that a bad worker never breaks GET /metrics.
 */
export function parseMetricsSnapshot(raw: string): MetricsSnapshot | null {
  return parseJson(snapshotSchema, raw);
}

/** The snapshot with `extra` labels on every value (a worker's, tagged `worker="w1"`); new objects. */
export function labelSnapshot(snapshot: MetricsSnapshot, extra: Record<string, string>): MetricsSnapshot {
  return snapshot.map((family) => ({
    ...family,
    values: family.values.map((v) => ({ ...v, labels: { ...v.labels, ...extra } })),
  }));
}

/** One metric's declaration: an entry of a process's table of metrics (see `MetricFamilies`). */
export interface MetricSpec<
  T extends 'counter' | 'gauge' | 'histogram' = 'counter' | 'gauge' | 'histogram',
  L extends string = string,
> {
  type: T;
  name: string;
  help: string;
  labelNames: readonly L[];
  buckets?: readonly number[];
}

export const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
  ({ type: 'counter', name, help, labelNames }) as MetricSpec<'counter', L>;
export const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
  ({ type: 'gauge', name, help, labelNames }) as MetricSpec<'gauge', L>;
export const histogram = <L extends string = never>(
  name: string,
  help: string,
  buckets: readonly number[],
  labelNames: readonly L[] = [],
) => ({ type: 'histogram', name, help, labelNames, buckets }) as MetricSpec<'histogram', L>;

/** The prom-client metric each entry of a table declares. */
export type MetricsOf<T extends Record<string, MetricSpec>> = {
  readonly [K in keyof T]: T[K] extends MetricSpec<'counter', infer L>
    ? Counter<L>
    : T[K] extends MetricSpec<'gauge', infer L>
      ? Gauge<L>
      : T[K] extends MetricSpec<'histogram', infer L>
        ? Histogram<L>
        : never;
};

/**
 * A base class whose instances hold a registry of their own (never prom-client's global one: each process keeps
 * its own) and, as fields of the same names, the metrics that `table` declares, registered in it.
 */
export function MetricFamilies<T extends Record<string, MetricSpec>>(table: T) {
  class Families {
    readonly registry = new Registry();

    constructor() {
      for (const [field, spec] of Object.entries(table)) Object.assign(this, { [field]: create(spec, this.registry) });
    }
  }
  return Families as new () => Families & MetricsOf<T>;
}

function create({ type, name, help, labelNames, buckets }: MetricSpec, registry: Registry) {
  const config = { name, help, labelNames, registers: [registry] };
  if (type === 'counter') return new Counter(config);
  if (type === 'gauge') return new Gauge(config);
  return new Histogram({ ...config, buckets: [...buckets!] });
}
