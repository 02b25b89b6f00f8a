/** SVG charts: tick choice, well-formed and escaped output, CDF steps and log axes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cdfChart, ChartOptions, lineChart, niceTicks } from './svg';

const options: ChartOptions = { title: 'Throughput', xLabel: 'concurrency', yLabel: 'tokens/s' };

/** Checks the markup is one balanced <svg> element with no NaN/undefined leaking into it. */
function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), svg.slice(0, 80));
  assert.match(svg, /viewBox="0 0 \d+ \d+"/);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  assert.equal(svg.match(/<svg[\s>]/g)?.length, 1);
  assert.equal(svg.match(/<\/svg>/g)?.length, 1);
  assert.doesNotMatch(svg, /NaN|undefined|Infinity|null/);
  // Every open tag is closed, in order (a small XML well-formedness check).
  const stack: string[] = [];
  for (const [, close, name, selfClosing] of svg.matchAll(/<(\/?)([a-zA-Z]+)[^>]*?(\/?)>/g)) {
    if (selfClosing) continue;
    if (close) assert.equal(stack.pop(), name);
    else stack.push(name);
  }
  assert.deepEqual(stack, []);
  // Text contains no raw markup characters: every & starts an entity.
  assert.doesNotMatch(svg, /&(?!amp;|lt;|gt;|quot;|#39;)/);
}

/** The x tick labels and their x positions. */
function xTicks(svg: string): { label: string; x: number }[] {
  const group = /<g class="x-ticks"[^>]*>([\s\S]*?)<\/g>/.exec(svg)![1];
  return [...group.matchAll(/<text x="([\d.-]+)"[^>]*>([^<]*)<\/text>/g)].map(([, x, label]) => ({ label, x: +x }));
}

describe('niceTicks', () => {
  it('steps by 1, 2 or 5 x 10^k within the range', () => {
    assert.deepEqual(niceTicks(0, 100), [0, 20, 40, 60, 80, 100]);
    assert.deepEqual(niceTicks(0, 97), [0, 20, 40, 60, 80]);
    assert.deepEqual(niceTicks(0, 1, 10), [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    assert.deepEqual(niceTicks(0.3, 0.7, 4), [0.3, 0.4, 0.5, 0.6, 0.7]);
    assert.deepEqual(niceTicks(-3, 12), [-2, 0, 2, 4, 6, 8, 10, 12]);
    assert.deepEqual(niceTicks(1200, 5600, 4), [2000, 3000, 4000, 5000]);
  });

  it('handles reversed, empty and non-finite ranges', () => {
    assert.deepEqual(niceTicks(10, 0), [0, 2, 4, 6, 8, 10]);
    assert.deepEqual(niceTicks(5, 5), [5]);
    assert.deepEqual(niceTicks(0, NaN), []);
  });
});

describe('lineChart', () => {
  const series = [
    { name: 'batch on', points: [1, 2, 4, 8].map((c): [number, number] => [c, c * 120]) },
    { name: 'batch off', points: [1, 2, 4, 8].map((c): [number, number] => [c, 100 + c]) },
  ];

  it('renders a standalone SVG with the title, labels and every series in the legend', () => {
    const svg = lineChart(series, options);
    assertWellFormed(svg);
    for (const text of ['Throughput', 'concurrency', 'tokens/s', 'batch on', 'batch off'])
      assert.ok(svg.includes(text));
    assert.match(svg, /<path d="M[^"]+" fill="none" stroke="#0072B2"/);
    assert.equal(lineChart(series, options), svg, 'deterministic');
  });

  it('formats tick labels compactly', () => {
    const svg = lineChart(
      [
        {
          name: 'a',
          points: [
            [0, 0],
            [10, 1200],
          ],
        },
      ],
      options,
    );
    assert.match(svg, />1\.2k</);
    assert.doesNotMatch(svg, />1200</);
  });

  it('escapes text', () => {
    const svg = lineChart([{ name: 'p<50> & "q"', points: [[1, 1]] }], {
      ...options,
      title: 'A & B <script>',
      yLabel: "it's",
    });
    assertWellFormed(svg);
    assert.ok(svg.includes('p&lt;50&gt; &amp; &quot;q&quot;'));
    assert.ok(svg.includes('A &amp; B &lt;script&gt;'));
    assert.ok(svg.includes('it&#39;s'));
    assert.ok(!svg.includes('<script>'));
  });

  it('handles empty, single-point and non-finite series without NaN', () => {
    assertWellFormed(lineChart([], options));
    assertWellFormed(lineChart([{ name: 'empty', points: [] }], options));
    assertWellFormed(lineChart([{ name: 'one', points: [[3, 5]] }], options));
    assertWellFormed(lineChart([{ name: 'zero', points: [[0, 0]] }], { ...options, xLog: true }));
    assertWellFormed(
      lineChart(
        [
          {
            name: 'flat',
            points: [
              [1, 7],
              [2, 7],
              [3, NaN],
            ],
          },
        ],
        { ...options, yMin: 7 },
      ),
    );
    assertWellFormed(
      lineChart(
        [
          {
            name: 'neg',
            points: [
              [-1, -5],
              [1, 5],
            ],
          },
        ],
        { ...options, width: 100, height: 50 },
      ),
    );
  });

  it('places 1, 2, 4, ..., 64 evenly on a log x axis', () => {
    const points = [1, 2, 4, 8, 16, 32, 64].map((c): [number, number] => [c, c]);
    const ticks = xTicks(lineChart([{ name: 's', points }], { ...options, xLog: true }));
    assert.deepEqual(
      ticks.map((t) => t.label),
      ['1', '2', '4', '8', '16', '32', '64'],
    );
    const gaps = ticks.slice(1).map((t, i) => t.x - ticks[i].x);
    for (const gap of gaps) assert.ok(Math.abs(gap - gaps[0]) < 0.02, `${gaps}`);
    assert.ok(gaps[0] > 0);

    // A narrow chart over more powers labels every other one rather than overlapping them.
    const wide = [1, 1024].map((c): [number, number] => [c, c]);
    const narrow = xTicks(lineChart([{ name: 's', points: wide }], { ...options, xLog: true, width: 420 }));
    assert.deepEqual(
      narrow.map((t) => t.label),
      ['1', '4', '16', '64', '256', '1.02k'],
    );
  });
});

describe('cdfChart', () => {
  const plotTop = (svg: string) => +/<rect class="plot" x="[\d.]+" y="([\d.]+)"/.exec(svg)![1];
  const paths = (svg: string) => [...svg.matchAll(/<path class="series" d="([^"]+)"/g)].map(([, d]) => d);

  it('draws steps that end at y = 1, the top of the plot', () => {
    const svg = cdfChart(
      [
        { name: 'ttft', values: [5, 1, 3, 3, 2, 8, 13] },
        { name: 'single', values: [4] },
      ],
      { ...options, title: 'Latency CDF' },
    );
    assertWellFormed(svg);
    for (const text of ['Latency CDF', 'ttft', 'single']) assert.ok(svg.includes(text));
    const [d, single] = paths(svg);
    assert.match(d, /^M[\d.]+ [\d.]+(V[\d.]+H[\d.]+)+V[\d.]+$/);
    assert.equal(+/V([\d.]+)$/.exec(d)![1], plotTop(svg));
    assert.equal(+/V([\d.]+)$/.exec(single)![1], plotTop(svg));
    // Six distinct values: a rise at each, so five horizontal runs between them.
    assert.equal(d.match(/H/g)?.length, 5);
  });

  it('keeps large sample sets small and handles empty ones', () => {
    const values = Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 100_003);
    const svg = cdfChart(
      [
        { name: 'big', values },
        { name: 'none', values: [] },
      ],
      { ...options, xLog: true },
    );
    assertWellFormed(svg);
    assert.ok(svg.length < 100_000, `${svg.length} chars`);
    assert.equal(+/V([\d.]+)$/.exec(paths(svg)[0])![1], plotTop(svg));
    assertWellFormed(cdfChart([], options));
    assertWellFormed(cdfChart([{ name: 'nan', values: [NaN, Infinity] }], options));
  });
});
