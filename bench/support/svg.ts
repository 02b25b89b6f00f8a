/**
 * Dependency-free SVG charts for the benchmark reports: line charts and empirical CDFs, as standalone SVG files
 * (white background, system sans-serif, Okabe-Ito colours) that read well in a browser or embedded on GitHub.
 * Output is deterministic: the same input gives the same string.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** Default 720. */
  width?: number;
  /** Default 420. */
  height?: number;
  /** Logarithmic x axis: powers of 2 (e.g. concurrency 1, 2, 4, ..., 64), or of 10 when the data spans more than 10 doublings. */
  xLog?: boolean;
  /** Bottom of the y axis. Line charts: default 0 (or the data minimum when it is negative). CDFs: the fraction axis, default 0. */
  yMin?: number;
  /** Accepted for compatibility; ignored. */
  percentX?: boolean;
}

/** Okabe-Ito, reordered so the first series get the strongest colours; yellow, the faintest on white, comes last. */
const PALETTE = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
/** Beyond eight series the colours repeat with a different dash pattern. */
const DASHES = ['', '7 3', '2 3', '9 3 2 3'];
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
/** Rough average glyph width of 12px sans-serif, for sizing margins and the legend. */
const CHAR_WIDTH = 7;
const TEXT = '#222';
const MUTED = '#555';

/**
 * Nice tick values within [min, max]: multiples of a step of 1, 2 or 5 x 10^k, chosen so there are about `count`
 * intervals. Returns [] for non-finite input and [min] when min === max.
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min > max) [min, max] = [max, min];
  if (min === max) return [min];
  const step = tickStep(min, max, count);
  const first = Math.ceil(min / step - 1e-9);
  const last = Math.floor(max / step + 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last && ticks.length < 1000; i++) ticks.push(multiple(i, step));
  return ticks;
}

/** Lines with point markers, one colour (and marker shape) per series, legend on the right, nice ticks and grid. */
export function lineChart(series: Series[], options: ChartOptions): string {
  const log = options.xLog === true;
  const drawn = series.map((s) =>
    s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!log || x > 0)),
  );
  const xs = extent(drawn.flatMap((points) => points.map(([x]) => x)));
  const ys = extent(drawn.flatMap((points) => points.map(([, y]) => y)));
  const xAxis = (count: number): Axis => {
    if (log) return xs ? logAxis(xs[0], xs[1]) : logAxis(1, 1);
    return xs ? linearAxis(xs[0], xs[1], count) : linearAxis(0, 1, count);
  };
  const yAxis = (count: number): Axis => {
    const fixed = finite(options.yMin);
    const low = fixed ?? Math.min(0, ys ? ys[0] : 0);
    return linearAxis(low, ys ? ys[1] : low + 1, count, fixed !== undefined);
  };
  const entries = series.map((s, i) => ({ name: s.name, ...style(i), marker: i % MARKERS }));
  const clipBottom = finite(options.yMin) !== undefined;
  return frame('line', options, entries, xAxis, yAxis, xs === undefined, clipBottom, (sx, sy) =>
    drawn
      .map((points, i) => {
        const { color, dash } = style(i);
        const coords = points.map(([x, y]) => [sx(x), sy(y)]);
        const line =
          coords.length > 1
            ? `<path d="${coords.map(([x, y], j) => `${j ? 'L' : 'M'}${num(x)} ${num(y)}`).join('')}" fill="none" ` +
              `stroke="${color}" stroke-width="2" stroke-linejoin="round"${dashAttr(dash)}/>`
            : '';
        const markers = points.map(
          ([x, y], j) =>
            marker(i % MARKERS, coords[j][0], coords[j][1], color, `${series[i].name}: ${format(x)}, ${format(y)}`) +
            '\n',
        );
        return `<g class="series">\n${line}${line ? '\n' : ''}${markers.join('')}</g>\n`;
      })
      .join(''),
  );
}

/**
 * Empirical CDF of each series' samples (x = value, y = fraction of samples <= x, 0..1) as step lines. The x axis
 * spans the data (not from 0); non-finite samples are ignored. Steps closer than half a pixel are merged, so large
 * sample sets stay small.
 */
export function cdfChart(samples: { name: string; values: number[] }[], options: ChartOptions): string {
  const log = options.xLog === true;
  const sorted = samples.map((s) => s.values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b));
  const xs = extent(sorted.flatMap((values) => (log ? values.filter((v) => v > 0) : values)));
  const xAxis = (count: number): Axis => {
    if (log) return xs ? logAxis(xs[0], xs[1]) : logAxis(1, 1);
    return xs ? linearAxis(xs[0], xs[1], count) : linearAxis(0, 1, count);
  };
  const yAxis = (count: number): Axis => {
    const low = Math.min(finite(options.yMin) ?? 0, 0.99);
    return { lo: low, hi: 1, ticks: niceTicks(low, 1, count), step: tickStep(low, 1, count), log: false };
  };
  const entries = samples.map((s, i) => ({ name: s.name, ...style(i) }));
  const empty = sorted.every((values) => values.length === 0);
  return frame('cdf', options, entries, xAxis, yAxis, empty, true, (sx, sy, x) =>
    sorted
      .map((values, i) => {
        if (values.length === 0) return '';
        const { color, dash } = style(i);
        // Values outside the axis (non-positive ones on a log axis) sit at its edge.
        const px = (v: number) => sx(Math.min(x.hi, Math.max(x.lo, v)));
        let current = px(values[0]);
        let d = `M${num(current)} ${num(sy(0))}`;
        let pending = sy(0);
        for (let at = 0; at < values.length;) {
          let end = at;
          while (end + 1 < values.length && values[end + 1] === values[at]) end++;
          const next = px(values[at]);
          if (next - current >= 0.5) {
            d += `V${num(pending)}H${num(next)}`;
            current = next;
          }
          pending = sy((end + 1) / values.length);
          at = end + 1;
        }
        d += `V${num(pending)}`;
        return (
          `<path class="series" d="${d}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round"` +
          `${dashAttr(dash)}><title>${escapeXml(samples[i].name)}: n=${values.length}</title></path>\n`
        );
      })
      .join(''),
  );
}

interface Axis {
  lo: number;
  hi: number;
  ticks: number[];
  /** Tick spacing for linear axes (label precision); 0 for log axes. */
  step: number;
  log: boolean;
}

interface Entry {
  name: string;
  color: string;
  dash: string;
  marker?: number;
}

type Scale = (v: number) => number;

function frame(
  kind: string,
  options: ChartOptions,
  entries: Entry[],
  xAxisFor: (count: number) => Axis,
  yAxisFor: (count: number) => Axis,
  empty: boolean,
  /** Clip data exactly at the x axis (data may lie below yMin); otherwise leave room for markers on the edge. */
  clipBottom: boolean,
  body: (sx: Scale, sy: Scale, x: Axis) => string,
): string {
  const width = positive(options.width) ?? 720;
  const height = positive(options.height) ?? 420;
  const top = 44;
  const plotH = Math.max(40, height - top - 58);
  const y = yAxisFor(Math.max(2, Math.round(plotH / 50)));
  const yLabels = y.ticks.map((t) => format(t, y.step));
  const left = 30 + Math.max(2, ...yLabels.map((l) => l.length)) * CHAR_WIDTH + 8;
  const maxLegend = Math.max(120, Math.round(width * 0.3));
  const longest = Math.max(0, ...entries.map((e) => Array.from(e.name).length));
  const legendW = entries.length ? Math.min(maxLegend, 40 + longest * CHAR_WIDTH) : 0;
  const plotW = Math.max(40, width - left - (legendW ? legendW + 16 : 24));
  const x = xAxisFor(Math.max(2, Math.round(plotW / 80)));
  const xLabels = x.ticks.map((t) => format(t, x.step));
  // Label every stride-th x tick when the labels would collide (log axes have a tick per power).
  const labelW = Math.max(...xLabels.map((l) => l.length), 1) * CHAR_WIDTH + 10;
  const stride = Math.max(1, Math.ceil((labelW * x.ticks.length) / plotW));
  const bottom = top + plotH;
  const right = left + plotW;
  const sx: Scale = (v) => left + plotW * project(x, v);
  const sy: Scale = (v) => bottom - plotH * project(y, v);
  const id = `clip-${kind}-${hash([kind, options.title, width, height, ...entries.map((e) => e.name)].join('\u0000'))}`;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="${FONT}" font-size="12" role="img" aria-label="${escapeXml(options.title)}">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<defs><clipPath id="${id}"><rect x="${num(left - 6)}" y="${num(top - 6)}" width="${num(plotW + 12)}" ` +
      `height="${num(plotH + (clipBottom ? 6 : 12))}"/></clipPath></defs>`,
    `<text class="title" x="${num(left + plotW / 2)}" y="26" text-anchor="middle" font-size="16" font-weight="600" ` +
      `fill="${TEXT}">${escapeXml(options.title)}</text>`,
  );

  const grid = [
    ...x.ticks.map((t) => `<line x1="${num(sx(t))}" y1="${num(top)}" x2="${num(sx(t))}" y2="${num(bottom)}"/>`),
    ...y.ticks.map((t) => `<line x1="${num(left)}" y1="${num(sy(t))}" x2="${num(right)}" y2="${num(sy(t))}"/>`),
  ];
  out.push(`<g class="grid" stroke="#e4e4e4" stroke-width="1" shape-rendering="crispEdges">`, ...grid, `</g>`);
  out.push(
    `<rect class="plot" x="${num(left)}" y="${num(top)}" width="${num(plotW)}" height="${num(plotH)}" fill="none" ` +
      `stroke="#999" stroke-width="1" shape-rendering="crispEdges"/>`,
  );
  out.push(
    `<g class="x-ticks" text-anchor="middle" fill="${MUTED}">`,
    ...x.ticks.flatMap((t, i) =>
      i % stride ? [] : [`<text x="${num(sx(t))}" y="${num(bottom + 18)}">${escapeXml(xLabels[i])}</text>`],
    ),
    `</g>`,
    `<g class="y-ticks" text-anchor="end" fill="${MUTED}">`,
    ...y.ticks.map(
      (t, i) => `<text x="${num(left - 8)}" y="${num(sy(t))}" dy="0.35em">${escapeXml(yLabels[i])}</text>`,
    ),
    `</g>`,
  );
  const yMid = num(top + plotH / 2);
  out.push(
    `<text class="x-label" x="${num(left + plotW / 2)}" y="${num(bottom + 42)}" text-anchor="middle" font-size="13" ` +
      `fill="${TEXT}">${escapeXml(options.xLabel)}</text>`,
    `<text class="y-label" x="16" y="${yMid}" transform="rotate(-90 16 ${yMid})" text-anchor="middle" ` +
      `dy="0.35em" font-size="13" fill="${TEXT}">${escapeXml(options.yLabel)}</text>`,
  );

  out.push(`<g class="data" clip-path="url(#${id})">`, body(sx, sy, x).trimEnd(), `</g>`);
  if (empty) {
    out.push(
      `<text class="no-data" x="${num(left + plotW / 2)}" y="${yMid}" text-anchor="middle" dy="0.35em" ` +
        `fill="${MUTED}">no data</text>`,
    );
  }

  if (entries.length) {
    const lx = right + 16;
    const maxChars = Math.max(4, Math.floor((legendW - 36) / CHAR_WIDTH));
    out.push(`<g class="legend">`);
    entries.forEach((e, i) => {
      const ly = top + 8 + i * 20;
      const chars = Array.from(e.name);
      const label = chars.length > maxChars ? chars.slice(0, maxChars - 1).join('') + '…' : e.name;
      const full = label === e.name ? '' : `<title>${escapeXml(e.name)}</title>`;
      out.push(
        `<line x1="${num(lx)}" y1="${num(ly)}" x2="${num(lx + 24)}" y2="${num(ly)}" stroke="${e.color}" ` +
          `stroke-width="2"${dashAttr(e.dash)}/>` +
          (e.marker === undefined ? '' : marker(e.marker, lx + 12, ly, e.color)) +
          `<text x="${num(lx + 30)}" y="${num(ly)}" dy="0.35em" fill="${TEXT}">${escapeXml(label)}${full}</text>`,
      );
    });
    out.push(`</g>`);
  }
  out.push(`</svg>`);
  return out.join('\n') + '\n';
}

/** A linear axis over [min, max] widened to nice round ends (the low end stays put when `fixedLow`). */
function linearAxis(min: number, max: number, count: number, fixedLow = false): Axis {
  let lo = min;
  let hi = Math.max(min, max);
  if (!(hi > lo)) {
    const pad = Math.abs(lo) * 0.1 || 1;
    if (!fixedLow) lo -= pad;
    hi += pad;
  }
  for (let i = 0; i < 10; i++) {
    const step = tickStep(lo, hi, count);
    const nlo = fixedLow ? lo : multiple(Math.floor(lo / step + 1e-9), step);
    const nhi = multiple(Math.ceil(hi / step - 1e-9), step);
    if (nlo === lo && nhi === hi) break;
    lo = nlo;
    hi = nhi;
  }
  return { lo, hi, ticks: niceTicks(lo, hi, count), step: tickStep(lo, hi, count), log: false };
}

/** A log axis from one power of 2 (or of 10, for wide ranges) to another, with a tick at each power. */
function logAxis(min: number, max: number): Axis {
  let base = 2;
  let a = Math.floor(Math.log2(min) + 1e-9);
  let b = Math.ceil(Math.log2(max) - 1e-9);
  if (b - a > 10) {
    base = 10;
    a = Math.floor(Math.log10(min) + 1e-9);
    b = Math.ceil(Math.log10(max) - 1e-9);
  }
  if (a === b) {
    a -= 1;
    b += 1;
  }
  const ticks: number[] = [];
  for (let k = a; k <= b; k++) ticks.push(base ** k);
  return { lo: base ** a, hi: base ** b, ticks, step: 0, log: true };
}

/** Where v falls on the axis, 0 at lo and 1 at hi. */
function project(axis: Axis, v: number): number {
  const t = axis.log
    ? (Math.log(v) - Math.log(axis.lo)) / (Math.log(axis.hi) - Math.log(axis.lo))
    : (v - axis.lo) / (axis.hi - axis.lo);
  return Number.isFinite(t) ? t : 0;
}

/** The 1, 2 or 5 x 10^k step that splits [min, max] into about `count` intervals. */
function tickStep(min: number, max: number, count: number): number {
  const raw = (max - min) / Math.max(1, Math.round(count));
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const exponent = Math.floor(Math.log10(raw));
  const error = raw / 10 ** exponent;
  const factor = error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.sqrt(2) ? 2 : 1;
  return exponent >= 0 ? factor * 10 ** exponent : factor / 10 ** -exponent;
}

/** i * step, computed as a division for fractional steps so that 3 * 0.1 gives 0.3. */
function multiple(i: number, step: number): number {
  const value = step < 1 ? i / Math.round(1 / step) : i * step;
  return value === 0 ? 0 : value;
}

/** Compact number: 250, 0.5, 1.2k, 3.4M; with `step`, enough digits to tell ticks `step` apart. */
function format(v: number, step = 0): string {
  if (!Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(v)));
  const digits = Math.min(15, Math.max(3, step > 0 ? magnitude - Math.floor(Math.log10(step)) + 1 : 3));
  const rounded = Number(v.toPrecision(digits));
  for (const [scale, suffix] of [
    [1e12, 'T'],
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const) {
    if (Math.abs(rounded) >= scale) return String(Number((rounded / scale).toPrecision(digits))) + suffix;
  }
  return String(rounded);
}

/** Escapes text for XML content and attributes, replacing characters XML 1.0 does not allow with U+FFFD. */
function escapeXml(text: string): string {
  let out = '';
  for (const ch of String(text)) {
    const code = ch.codePointAt(0)!;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '"') out += '&quot;';
    else if (ch === "'") out += '&#39;';
    else if (
      (code < 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) ||
      (code >= 0xd800 && code <= 0xdfff) ||
      code === 0xfffe ||
      code === 0xffff
    )
      out += '\uFFFD';
    else out += ch;
  }
  return out;
}

const MARKERS = 5;

/** Point marker: circle, square, triangle, diamond, inverted triangle (by series), white-edged for contrast. */
function marker(shape: number, x: number, y: number, color: string, tooltip?: string): string {
  const s = 4;
  const attrs = `fill="${color}" stroke="#fff" stroke-width="1"`;
  const tip = tooltip === undefined ? '' : `<title>${escapeXml(tooltip)}</title>`;
  const close = tip ? `>${tip}</${shape === 0 ? 'circle' : 'path'}>` : '/>';
  if (shape === 0) return `<circle cx="${num(x)}" cy="${num(y)}" r="${s}" ${attrs}${close}`;
  const p = (dx: number, dy: number) => `${num(x + dx)} ${num(y + dy)}`;
  const d =
    shape === 1
      ? `M${p(-s * 0.9, -s * 0.9)}L${p(s * 0.9, -s * 0.9)}L${p(s * 0.9, s * 0.9)}L${p(-s * 0.9, s * 0.9)}Z`
      : shape === 2
        ? `M${p(0, -s * 1.2)}L${p(s * 1.1, s * 0.8)}L${p(-s * 1.1, s * 0.8)}Z`
        : shape === 3
          ? `M${p(0, -s * 1.3)}L${p(s * 1.3, 0)}L${p(0, s * 1.3)}L${p(-s * 1.3, 0)}Z`
          : `M${p(0, s * 1.2)}L${p(s * 1.1, -s * 0.8)}L${p(-s * 1.1, -s * 0.8)}Z`;
  return `<path d="${d}" ${attrs}${close}`;
}

function style(i: number): { color: string; dash: string } {
  return { color: PALETTE[i % PALETTE.length], dash: DASHES[Math.floor(i / PALETTE.length) % DASHES.length] };
}

function dashAttr(dash: string): string {
  return dash ? ` stroke-dasharray="${dash}"` : '';
}

/** [min, max] of the values, or undefined when there are none (loops, not spread: sample sets can be large). */
function extent(values: number[]): [number, number] | undefined {
  if (values.length === 0) return undefined;
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** A coordinate, rounded to 0.01px; never NaN or -0. */
function num(v: number): string {
  const r = Math.round(v * 100) / 100;
  return String(Number.isFinite(r) && r !== 0 ? r : 0);
}

function finite(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) ? v : undefined;
}

function positive(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined;
}

/** FNV-1a, for a clip-path id that is stable for the same chart and distinct between charts on one page. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}
