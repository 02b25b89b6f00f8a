/**
 * A small dependency-free Prometheus metrics registry: counters, gauges and histograms with label sets, a
 * JSON-safe snapshot of them (workers publish theirs to Redis), tagging and merging of snapshots (the API
 * combines all workers' with its own), and rendering to the text exposition format 0.0.4 (GET /metrics).
 *
 * Snapshots hold plain numbers; JSON turns NaN and ±Inf into null, which merging and rendering read as NaN.
 */

export type Labels = Record<string, string>;

export interface CounterSample {
  labels: Labels;
  value: number;
}

export interface HistogramSample {
  labels: Labels;
  /** Cumulative counts per upper bound, same length as the family's `buckets` (the +Inf bucket is `count`). */
  buckets: number[];
  sum: number;
  count: number;
}

export type MetricFamily =
  | { name: string; help: string; type: 'counter' | 'gauge'; samples: CounterSample[] }
  | { name: string; help: string; type: 'histogram'; buckets: number[]; samples: HistogramSample[] };

/** Upper bounds for durations in seconds, like TGI's; +Inf is implicit. */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function checkMetricName(name: string): void {
  if (typeof name !== 'string' || !METRIC_NAME.test(name)) throw new Error(`Invalid metric name: ${String(name)}`);
}

function checkLabelName(name: string, metric: string): void {
  if (!LABEL_NAME.test(name)) throw new Error(`Invalid label name for ${metric}: ${name}`);
}

/**
 * The identity of a label set, independent of key order. Names are checked on every call (a cheap regex test),
 * so `name=length:value` pairs in name order cannot be ambiguous. The empty set's key is ''.
 */
function labelKey(labels: Labels, metric: string): string {
  const names = Object.keys(labels);
  if (names.length === 0) return '';
  if (names.length > 1) names.sort();
  let key = '';
  for (const name of names) {
    checkLabelName(name, metric);
    const value = labels[name];
    if (typeof value !== 'string') throw new Error(`Label ${name} of ${metric} must be a string`);
    key += name + '=' + value.length + ':' + value;
  }
  return key;
}

/** A copy of a label set with its keys in sorted order. */
function sortedLabels(labels: Labels): Labels {
  const copy: Labels = {};
  for (const name of Object.keys(labels).sort()) copy[name] = labels[name];
  return copy;
}

interface ValueSeries {
  labels: Labels;
  value: number;
}

/** Shared by Counter and Gauge: one number per label set, in the order the sets were first used. */
abstract class ValueMetric {
  private readonly series = new Map<string, ValueSeries>();
  /** The series without labels, kept apart so the no-label path does not even build a key. */
  private base: ValueSeries | undefined;
  /** Whether any series was ever created: one that never was renders a single `name 0` sample. */
  private touched = false;

  protected abstract readonly type: 'counter' | 'gauge';

  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    checkMetricName(name);
  }

  /** The current value for a label set; 0 for one never used. */
  get(labels?: Labels): number {
    if (labels === undefined) return this.base?.value ?? 0;
    const key = labelKey(labels, this.name);
    return key === '' ? (this.base?.value ?? 0) : (this.series.get(key)?.value ?? 0);
  }

  /** This metric as a snapshot family (deep copies). */
  collect(): MetricFamily {
    const samples: CounterSample[] = [];
    for (const s of this.series.values()) samples.push({ labels: { ...s.labels }, value: s.value });
    if (!this.touched) samples.push({ labels: {}, value: 0 });
    return { name: this.name, help: this.help, type: this.type, samples };
  }

  protected seriesFor(labels: Labels | undefined): ValueSeries {
    if (labels === undefined) return this.base ?? this.createBase();
    const key = labelKey(labels, this.name);
    if (key === '') return this.base ?? this.createBase();
    let s = this.series.get(key);
    if (s === undefined) {
      s = { labels: sortedLabels(labels), value: 0 };
      this.series.set(key, s);
      this.touched = true;
    }
    return s;
  }

  protected clearSeries(): void {
    this.series.clear();
    this.base = undefined;
  }

  protected removeSeries(matches: (labels: Labels) => boolean): void {
    for (const [key, s] of this.series) {
      if (key !== '' && matches(s.labels)) this.series.delete(key);
    }
  }

  private createBase(): ValueSeries {
    const s: ValueSeries = { labels: {}, value: 0 };
    this.series.set('', s);
    this.base = s;
    this.touched = true;
    return s;
  }
}

/** A monotonically increasing count. */
export class Counter extends ValueMetric {
  protected readonly type = 'counter';

  /** Adds `by` (default 1, must not be negative) to the label set's count. */
  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new Error(`Counter ${this.name} can only increase (got ${by})`);
    this.seriesFor(labels).value += by;
  }
}

/** A value that goes up and down. */
export class Gauge extends ValueMetric {
  protected readonly type = 'gauge';

  set(value: number, labels?: Labels): void {
    this.seriesFor(labels).value = value;
  }

  inc(labels?: Labels, by = 1): void {
    this.seriesFor(labels).value += by;
  }

  dec(labels?: Labels, by = 1): void {
    this.seriesFor(labels).value -= by;
  }

  /** Drops every label set (a cleared gauge renders no samples until it is set again). */
  clear(): void {
    this.clearSeries();
  }

  /** Drops the label sets that include every label of `match` (an unloaded model's series). */
  removeWhere(match: Labels): void {
    this.removeSeries((labels) => Object.entries(match).every(([k, v]) => labels[k] === v));
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Non-cumulative counts per bucket; the last slot is the +Inf overflow. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/** Observations counted into buckets by upper bound (`le`), with their sum and count. */
export class Histogram {
  readonly buckets: readonly number[];
  private readonly series = new Map<string, HistogramSeries>();
  private base: HistogramSeries | undefined;

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
  ) {
    checkMetricName(name);
    for (let i = 0; i < buckets.length; i++) {
      if (typeof buckets[i] !== 'number' || !Number.isFinite(buckets[i])) {
        throw new Error(`Histogram ${name}: bucket bounds must be finite numbers`);
      }
      if (i > 0 && !(buckets[i] > buckets[i - 1])) {
        throw new Error(`Histogram ${name}: bucket bounds must be strictly ascending`);
      }
    }
    this.buckets = Object.freeze([...buckets]);
  }

  /** Counts `value` into the first bucket whose bound is >= it (NaN and values above all bounds: only +Inf). */
  observe(value: number, labels?: Labels): void {
    const s = this.seriesFor(labels);
    const bounds = this.buckets;
    let lo = 0;
    let hi = bounds.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (value <= bounds[mid]) hi = mid;
      else lo = mid + 1;
    }
    s.counts[lo]++;
    s.sum += value;
    s.count++;
  }

  get(labels?: Labels): { count: number; sum: number } {
    let s: HistogramSeries | undefined;
    if (labels === undefined) s = this.base;
    else {
      const key = labelKey(labels, this.name);
      s = key === '' ? this.base : this.series.get(key);
    }
    return s === undefined ? { count: 0, sum: 0 } : { count: s.count, sum: s.sum };
  }

  /** This metric as a snapshot family (deep copies, cumulative buckets). */
  collect(): MetricFamily {
    const samples: HistogramSample[] = [];
    for (const s of this.series.values()) {
      const buckets = new Array<number>(this.buckets.length);
      let running = 0;
      for (let i = 0; i < buckets.length; i++) buckets[i] = running += s.counts[i];
      samples.push({ labels: { ...s.labels }, buckets, sum: s.sum, count: s.count });
    }
    return { name: this.name, help: this.help, type: 'histogram', buckets: [...this.buckets], samples };
  }

  private seriesFor(labels: Labels | undefined): HistogramSeries {
    if (labels === undefined) return this.base ?? this.createBase();
    const key = labelKey(labels, this.name);
    if (key === '') return this.base ?? this.createBase();
    let s = this.series.get(key);
    if (s === undefined) {
      if ('le' in labels) throw new Error(`Histogram ${this.name}: the label name "le" is reserved`);
      s = { labels: sortedLabels(labels), counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    return s;
  }

  private createBase(): HistogramSeries {
    const s: HistogramSeries = { labels: {}, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
    this.series.set('', s);
    this.base = s;
    return s;
  }
}

type AnyMetric = Counter | Gauge | Histogram;

/** The metrics of one process, in registration order. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, AnyMetric>();

  counter(name: string, help: string): Counter {
    return this.register(name, Counter, () => new Counter(name, help));
  }

  gauge(name: string, help: string): Gauge {
    return this.register(name, Gauge, () => new Gauge(name, help));
  }

  /** `buckets`: finite upper bounds, strictly ascending; +Inf is implicit. Re-registering needs the same bounds. */
  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const h = this.register(name, Histogram, () => new Histogram(name, help, buckets));
    if (!sameBuckets(h.buckets, buckets)) {
      throw new Error(`Histogram ${name} is already registered with other buckets`);
    }
    return h;
  }

  /** Plain JSON-safe deep copies: families in registration order, samples in the order label sets were first used. */
  snapshot(): MetricFamily[] {
    const families: MetricFamily[] = [];
    for (const m of this.metrics.values()) families.push(m.collect());
    return families;
  }

  render(): string {
    return renderMetrics(this.snapshot());
  }

  private register<T extends AnyMetric>(name: string, kind: abstract new (...args: never[]) => T, create: () => T): T {
    const existing = this.metrics.get(name);
    if (existing !== undefined) {
      if (existing instanceof kind) return existing;
      throw new Error(`Metric ${name} is already registered as a ${existing.collect().type}`);
    }
    const metric = create();
    this.metrics.set(name, metric);
    return metric;
  }
}

/** Reads a snapshot number, JSON's null for NaN/±Inf included. */
function num(value: number | null | undefined): number {
  return typeof value === 'number' ? value : NaN;
}

/**
 * Adds `extra` labels to every sample of every family (used to tag a worker's snapshot with worker="w1"); an
 * extra label replaces a sample's label of the same name. Returns new objects.
 */
export function withLabels(families: MetricFamily[], extra: Labels): MetricFamily[] {
  for (const name of Object.keys(extra)) {
    checkLabelName(name, 'withLabels');
    if (typeof extra[name] !== 'string') throw new Error(`Label ${name} must be a string`);
  }
  return families.map((f): MetricFamily => {
    if (f.type === 'histogram') {
      if ('le' in extra) throw new Error(`Histogram ${f.name}: the label name "le" is reserved`);
      return {
        name: f.name,
        help: f.help,
        type: f.type,
        buckets: [...f.buckets],
        samples: f.samples.map((s) => ({
          labels: { ...s.labels, ...extra },
          buckets: [...s.buckets],
          sum: s.sum,
          count: s.count,
        })),
      };
    }
    return {
      name: f.name,
      help: f.help,
      type: f.type,
      samples: f.samples.map((s) => ({ labels: { ...s.labels, ...extra }, value: s.value })),
    };
  });
}

/** A label set's identity for merging: order-independent, and never throws on labels that came from JSON. */
function mergeKey(labels: Labels): string {
  const names = Object.keys(labels).sort();
  return JSON.stringify(names.map((name) => [name, labels[name]]));
}

function sameBuckets(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Merges several snapshots into one list, in first-seen order: families with the same name are combined (samples
 * concatenated; samples with identical label sets are summed, for histograms bucket-wise). A family whose name was
 * first seen with another type, or other histogram buckets, is dropped. Returns new objects.
 */
export function mergeFamilies(...lists: MetricFamily[][]): MetricFamily[] {
  const out: MetricFamily[] = [];
  const byName = new Map<string, { family: MetricFamily; samples: Map<string, CounterSample | HistogramSample> }>();
  for (const list of lists) {
    for (const f of list) {
      let entry = byName.get(f.name);
      if (entry === undefined) {
        const family: MetricFamily =
          f.type === 'histogram'
            ? { name: f.name, help: f.help, type: f.type, buckets: [...f.buckets], samples: [] }
            : { name: f.name, help: f.help, type: f.type, samples: [] };
        entry = { family, samples: new Map() };
        byName.set(f.name, entry);
        out.push(family);
      } else if (
        entry.family.type !== f.type ||
        (entry.family.type === 'histogram' && f.type === 'histogram' && !sameBuckets(entry.family.buckets, f.buckets))
      ) {
        continue;
      }
      const target = entry.family;
      for (const s of f.samples) {
        const key = mergeKey(s.labels);
        const seen = entry.samples.get(key);
        if (target.type === 'histogram') {
          const h = s as HistogramSample;
          const n = target.buckets.length;
          if (seen === undefined) {
            const copy: HistogramSample = {
              labels: { ...h.labels },
              buckets: Array.from({ length: n }, (_, i) => num(h.buckets[i])),
              sum: num(h.sum),
              count: num(h.count),
            };
            target.samples.push(copy);
            entry.samples.set(key, copy);
          } else {
            const acc = seen as HistogramSample;
            for (let i = 0; i < n; i++) acc.buckets[i] += num(h.buckets[i]);
            acc.sum += num(h.sum);
            acc.count += num(h.count);
          }
        } else {
          const c = s as CounterSample;
          if (seen === undefined) {
            const copy: CounterSample = { labels: { ...c.labels }, value: num(c.value) };
            target.samples.push(copy);
            entry.samples.set(key, copy);
          } else {
            (seen as CounterSample).value += num(c.value);
          }
        }
      }
    }
  }
  return out;
}

/** A sample value or bound: integers as integers, NaN as NaN, ±Inf as +Inf/-Inf, null (JSON's NaN/±Inf) as NaN. */
function formatNumber(value: number | null | undefined): string {
  const v = num(value);
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function escapeLabelValue(value: string): string {
  return String(value).replace(/[\\"\n]/g, (c) => (c === '\\' ? '\\\\' : c === '"' ? '\\"' : '\\n'));
}

function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\\' ? '\\\\' : '\\n'));
}

/** `{a="1",b="2"}` in the label set's key order, then `le` if given; '' for no labels at all. */
function formatLabels(labels: Labels, le?: string): string {
  const parts: string[] = [];
  for (const name of Object.keys(labels)) parts.push(`${name}="${escapeLabelValue(labels[name])}"`);
  if (le !== undefined) parts.push(`le="${le}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/**
 * Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` per family, then its samples; histograms emit
 * `name_bucket{...,le="x"}` per bound plus le="+Inf", then `name_sum` and `name_count`. Ends with a newline
 * ('' for no families).
 */
export function renderMetrics(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === 'histogram') {
      const les = f.buckets.map(formatNumber);
      for (const s of f.samples) {
        for (let i = 0; i < les.length; i++) {
          lines.push(`${f.name}_bucket${formatLabels(s.labels, les[i])} ${formatNumber(s.buckets[i])}`);
        }
        lines.push(`${f.name}_bucket${formatLabels(s.labels, '+Inf')} ${formatNumber(s.count)}`);
        const labels = formatLabels(s.labels);
        lines.push(
          `${f.name}_sum${labels} ${formatNumber(s.sum)}`,
          `${f.name}_count${labels} ${formatNumber(s.count)}`,
        );
      }
    } else {
      for (const s of f.samples) lines.push(`${f.name}${formatLabels(s.labels)} ${formatNumber(s.value)}`);
    }
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}
