/**
 * The benchmark reports' plots: vega-lite specs built from results (line charts of a measure against a swept
 * setting, and empirical CDFs of samples), rendered to standalone SVG by vega in Node, with no browser or canvas.
 */
import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite/build/index';
import type { TopLevelSpec } from 'vega-lite/build/index';

export interface Series {
  name: string;
  points: [number, number][];
}

export interface Samples {
  name: string;
  values: number[];
}

export interface PlotOptions {
  title: string;
  subtitle?: string;
  /** Axis titles, with their units. */
  xTitle: string;
  yTitle: string;
  /** Logarithmic x axis: base 2 for a doubling sweep (clients 1, 2, 4, ...), base 10 for latencies. */
  xLog?: 2 | 10;
}

const WIDTH = 520;
const HEIGHT = 300;
/**
 * Without a canvas vega sizes text by an estimate that runs wide (about 0.8 em a character): legend labels get room
 * for that estimate rather than being cut, and titles are kept short, as the estimate also sets the image's width.
 */
const LABEL_LIMIT = 480;
/** Okabe-Ito, strongest colours first: distinguishable with the common colour-vision deficiencies. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];

/** A line with a marker per point for each series; the x ticks are the swept values themselves on a log axis. */
export function lineChartSpec(series: Series[], options: PlotOptions): TopLevelSpec {
  const rows = series.flatMap((s) =>
    s.points
      .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!options.xLog || x > 0))
      .map(([x, y]) => ({ series: s.name, x, y })),
  );
  const xs = [...new Set(rows.map((r) => r.x))].sort((a, b) => a - b);
  return {
    ...frame(options),
    data: { values: rows },
    mark: { type: 'line', point: { size: 50, filled: true }, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: options.xTitle,
        scale: options.xLog ? { type: 'log', base: options.xLog } : { zero: false },
        axis: options.xLog === 2 ? { values: xs, format: 'd' } : {},
      },
      y: { field: 'y', type: 'quantitative', title: options.yTitle, scale: { zero: true } },
      color: seriesEncoding(series.map((s) => s.name)),
      shape: { ...seriesEncoding(series.map((s) => s.name)), scale: { domain: series.map((s) => s.name) } },
      tooltip: [{ field: 'series' }, { field: 'x' }, { field: 'y', format: '.4~r' }],
    },
  };
}

/**
 * The empirical CDF of each sample set (x: value, y: fraction of samples at or below it) as step lines, computed by
 * vega-lite's window transform. Non-finite samples (and non-positive ones on a log axis) are left out.
 */
export function cdfChartSpec(samples: Samples[], options: PlotOptions): TopLevelSpec {
  const rows = samples.flatMap((s) =>
    s.values.filter((v) => Number.isFinite(v) && (!options.xLog || v > 0)).map((value) => ({ series: s.name, value })),
  );
  const counts = new Map(samples.map((s) => [s.name, rows.filter((r) => r.series === s.name).length]));
  return {
    ...frame(options),
    data: { values: rows },
    transform: [{ window: [{ op: 'cume_dist', as: 'fraction' }], sort: [{ field: 'value' }], groupby: ['series'] }],
    mark: { type: 'line', interpolate: 'step-after', strokeWidth: 2 },
    encoding: {
      x: {
        field: 'value',
        type: 'quantitative',
        title: options.xTitle,
        // a log axis spans the data, not the decades around it
        scale: options.xLog ? { type: 'log', base: options.xLog, nice: false } : { zero: false, nice: true },
        axis: { format: '~g' },
      },
      y: {
        field: 'fraction',
        type: 'quantitative',
        title: options.yTitle,
        scale: { domain: [0, 1] },
        axis: { format: '.0%' },
      },
      color: {
        ...seriesEncoding(samples.map((s) => s.name)),
        // the legend says how many samples each line stands for
        legend: {
          labelExpr: `datum.label + ${JSON.stringify(countSuffix(counts))}[datum.label]`,
          labelLimit: LABEL_LIMIT,
        },
      },
      tooltip: [{ field: 'series' }, { field: 'value', format: '.4~r' }, { field: 'fraction', format: '.1%' }],
    },
  };
}

function countSuffix(counts: Map<string, number>): Record<string, string> {
  return Object.fromEntries([...counts].map(([name, n]) => [name, ` (n=${n})`]));
}

/** What every plot shares: size, title, white background, fonts and the legend's place. */
function frame(options: PlotOptions): Omit<TopLevelSpec, 'data' | 'mark' | 'encoding'> {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: options.subtitle ? { text: options.title, subtitle: options.subtitle } : options.title,
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    config: {
      font: 'Helvetica, Arial, sans-serif',
      title: { fontSize: 15, subtitleFontSize: 12, anchor: 'start', offset: 10 },
      axis: { labelFontSize: 11, titleFontSize: 12, titlePadding: 8, gridColor: '#e4e4e4' },
      legend: {
        orient: 'bottom',
        direction: 'vertical',
        labelFontSize: 12,
        symbolStrokeWidth: 2,
        labelLimit: LABEL_LIMIT,
      },
    },
  } as Omit<TopLevelSpec, 'data' | 'mark' | 'encoding'>;
}

/** Series in the order given, each with its own colour (and, where used, marker shape); no legend title. */
function seriesEncoding(names: string[]) {
  return {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    sort: names,
    scale: { domain: names, range: names.map((_, i) => PALETTE[i % PALETTE.length]) },
  };
}

/** vega and vega-lite are ES modules with top-level await: a CommonJS build reaches them only by import(). */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a fixed body, so that tsc leaves import() alone
const importEsm = new Function('specifier', 'return import(specifier)') as <T>(specifier: string) => Promise<T>;

/** Compiles a vega-lite spec and renders it headless to one standalone SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([importEsm<typeof Vega>('vega'), importEsm<typeof VegaLite>('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  try {
    return (await view.toSVG()) + '\n';
  } finally {
    view.finalize();
  }
}
