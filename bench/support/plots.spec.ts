/** The plots: the vega-lite specs built from results, and the SVG that vega renders from them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cdfChartSpec, lineChartSpec, renderSvg } from './plots';

/** The legend's entries, in order (vega draws each label as a <text> in its own role-legend-label group). */
function legendLabels(svg: string): string[] {
  return [...svg.matchAll(/<g class="mark-text role-legend-label"[^>]*><text[^>]*>([^<]*)<\/text>/g)].map(([, t]) => t);
}

/** The data lines: vega draws each series as one <path> in its own line-mark group. */
function lines(svg: string): [number, number][][] {
  return [...svg.matchAll(/<g class="mark-line role-mark[^>]*><path [^>]*d="([^"]+)"/g)].map(([, d]) =>
    [...d.matchAll(/[ML]([\d.-]+),([\d.-]+)/g)].map(([, x, y]): [number, number] => [+x, +y]),
  );
}

describe('lineChartSpec', () => {
  const series = [
    { name: 'Switchyard', points: [1, 2, 4, 8].map((c): [number, number] => [c, c * 120]) },
    { name: 'peer', points: [1, 4, 16].map((c): [number, number] => [c, 300]) },
  ];
  const options = { title: 'Throughput', xTitle: 'concurrent clients', yTitle: 'tokens/s', xLog: 2 as const };

  it('renders a line per series, the titles, and a legend in the order given', async () => {
    const svg = await renderSvg(lineChartSpec(series, options));
    assert.ok(svg.startsWith('<svg'), svg.slice(0, 80));
    assert.doesNotMatch(svg, /NaN|undefined/);
    assert.equal(lines(svg).length, 2);
    assert.deepEqual(legendLabels(svg), ['Switchyard', 'peer']);
    for (const text of ['Throughput', 'concurrent clients', 'tokens/s'])
      assert.ok(svg.includes(`>${text}</text>`), text);
  });

  it('ticks the swept values on a log axis and leaves out points it cannot draw', () => {
    const spec = lineChartSpec(
      [
        ...series,
        {
          name: 'bad',
          points: [
            [0, 1],
            [2, NaN],
          ],
        },
      ],
      options,
    ) as {
      data: { values: { series: string }[] };
      encoding: { x: { axis: { values: number[] } } };
    };
    assert.deepEqual(spec.encoding.x.axis.values, [1, 2, 4, 8, 16]);
    assert.equal(spec.data.values.filter((r) => r.series === 'bad').length, 0);
  });
});

describe('cdfChartSpec', () => {
  it('renders a step line per sample set, counts in the legend, and the fraction axis to 100%', async () => {
    const svg = await renderSvg(
      cdfChartSpec(
        [
          { name: 'continuous', values: [5, 1, 3, 3, 2, 8, 13] },
          { name: 'static', values: [4, NaN, 9] },
        ],
        { title: 'Latency CDF', xTitle: 'latency (ms)', yTitle: 'requests finished within', xLog: 10 },
      ),
    );
    const [continuous, fixed] = lines(svg);
    assert.ok(continuous && fixed, 'two lines');
    // step-after: horizontal and vertical segments only, a rise at each distinct value after the first
    const segments = continuous.slice(1).map(([x, y], i) => [x - continuous[i][0], y - continuous[i][1]]);
    assert.ok(segments.every(([dx, dy]) => dx === 0 || dy === 0));
    assert.equal(segments.filter(([, dy]) => dy !== 0).length, 5);
    assert.deepEqual(legendLabels(svg), ['continuous (n=7)', 'static (n=2)']);
    for (const text of ['Latency CDF', 'latency (ms)', 'requests finished within', '100%'])
      assert.ok(svg.includes(`>${text}</text>`), text);
  });
});
