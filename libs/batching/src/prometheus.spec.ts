import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DURATION_BUCKETS,
  mergeFamilies,
  MetricFamily,
  MetricsRegistry,
  renderMetrics,
  withLabels,
} from './prometheus';

describe('Counter', () => {
  it('counts by 1 or by a given amount, per label set', () => {
    const c = new MetricsRegistry().counter('requests_total', 'Requests.');
    assert.equal(c.get(), 0);
    c.inc();
    c.inc(undefined, 2.5);
    c.inc({ model: 'a' });
    c.inc({ model: 'a' }, 4);
    c.inc({ model: 'b' }, 0);
    assert.equal(c.get(), 3.5);
    assert.equal(c.get({}), 3.5);
    assert.equal(c.get({ model: 'a' }), 5);
    assert.equal(c.get({ model: 'b' }), 0);
    assert.equal(c.get({ model: 'never' }), 0);
  });

  it('refuses to go down', () => {
    const c = new MetricsRegistry().counter('x_total', 'X.');
    assert.throws(() => c.inc(undefined, -1), /only increase/);
    assert.throws(() => c.inc({ a: '1' }, NaN), /only increase/);
    assert.equal(c.get(), 0);
  });
});

describe('Gauge', () => {
  it('sets, increments and decrements per label set', () => {
    const g = new MetricsRegistry().gauge('queue_depth', 'Queue.');
    g.set(5);
    g.inc();
    g.dec(undefined, 3);
    g.inc({ model: 'a' }, 2);
    g.dec({ model: 'a' });
    g.set(-1.5, { model: 'b' });
    assert.equal(g.get(), 3);
    assert.equal(g.get({ model: 'a' }), 1);
    assert.equal(g.get({ model: 'b' }), -1.5);
  });

  it('clear drops every label set', () => {
    const r = new MetricsRegistry();
    const g = r.gauge('loaded', 'Loaded models.');
    g.set(1, { model: 'a' });
    g.set(2);
    g.clear();
    assert.equal(g.get({ model: 'a' }), 0);
    assert.equal(g.get(), 0);
    assert.equal(r.render(), '# HELP loaded Loaded models.\n# TYPE loaded gauge\n');
    g.set(7, { model: 'b' });
    assert.equal(r.render(), '# HELP loaded Loaded models.\n# TYPE loaded gauge\nloaded{model="b"} 7\n');
  });
});

describe('Histogram', () => {
  it('keeps cumulative buckets, with a value on a bound counted in that bucket', () => {
    const r = new MetricsRegistry();
    const h = r.histogram('d_seconds', 'D.', [0.1, 1, 10]);
    for (const v of [0.05, 0.1, 0.5, 1, 1, 20, NaN]) h.observe(v, { m: 'x' });
    h.observe(2);
    const [family] = r.snapshot();
    assert.equal(family.type, 'histogram');
    assert.deepEqual(family, {
      name: 'd_seconds',
      help: 'D.',
      type: 'histogram',
      buckets: [0.1, 1, 10],
      samples: [
        { labels: { m: 'x' }, buckets: [2, 5, 5], sum: NaN, count: 7 },
        { labels: {}, buckets: [0, 0, 1], sum: 2, count: 1 },
      ],
    });
    assert.deepEqual(h.get(), { count: 1, sum: 2 });
    assert.deepEqual(h.get({ m: 'nope' }), { count: 0, sum: 0 });
  });

  it('rejects bad buckets and the reserved le label', () => {
    const r = new MetricsRegistry();
    assert.throws(() => r.histogram('a', 'A.', [1, 1]), /ascending/);
    assert.throws(() => r.histogram('b', 'B.', [2, 1]), /ascending/);
    assert.throws(() => r.histogram('c', 'C.', [1, Infinity]), /finite/);
    assert.throws(() => r.histogram('d', 'D.', [NaN]), /finite/);
    const h = r.histogram('e', 'E.', []);
    h.observe(3);
    assert.deepEqual(h.get(), { count: 1, sum: 3 });
    assert.throws(() => h.observe(1, { le: '1' }), /reserved/);
  });
});

describe('MetricsRegistry', () => {
  it('returns the same instance for the same name and type, and throws for another type or buckets', () => {
    const r = new MetricsRegistry();
    const c = r.counter('a_total', 'A.');
    assert.equal(r.counter('a_total', 'A again.'), c);
    const h = r.histogram('h', 'H.', [1, 2]);
    assert.equal(r.histogram('h', 'H.', [1, 2]), h);
    assert.throws(() => r.gauge('a_total', 'A.'), /already registered/);
    assert.throws(() => r.histogram('a_total', 'A.', [1]), /already registered/);
    assert.throws(() => r.counter('h', 'H.'), /already registered/);
    assert.throws(() => r.histogram('h', 'H.', [1, 3]), /other buckets/);
    assert.equal(r.snapshot().length, 2);
  });

  it('rejects invalid metric names at registration and invalid label names at first use', () => {
    const r = new MetricsRegistry();
    for (const name of ['', '1abc', 'a-b', 'a b', 'é']) {
      assert.throws(() => r.counter(name, 'X.'), /Invalid metric name/);
      assert.throws(() => r.gauge(name, 'X.'), /Invalid metric name/);
      assert.throws(() => r.histogram(name, 'X.', [1]), /Invalid metric name/);
    }
    assert.doesNotThrow(() => r.counter('ns:sub_name_total', 'Colons are allowed.'));
    assert.doesNotThrow(() => r.counter('_x', 'X.'));
    const c = r.counter('c_total', 'C.');
    const g = r.gauge('g', 'G.');
    const h = r.histogram('h', 'H.', [1]);
    for (const label of ['1a', 'a-b', 'a:b', '']) {
      assert.throws(() => c.inc({ [label]: 'v' }), /Invalid label name/);
      assert.throws(() => g.set(1, { ok: 'v', [label]: 'v' }), /Invalid label name/);
      assert.throws(() => h.observe(1, { [label]: 'v' }), /Invalid label name/);
    }
    assert.equal(
      renderMetrics(r.snapshot().filter((f) => f.name === 'c_total')),
      '# HELP c_total C.\n# TYPE c_total counter\nc_total 0\n',
    );
  });

  it('treats label sets as equal regardless of key order, rendering them in name order', () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_total', 'T.');
    c.inc({ b: '2', a: '1' });
    c.inc({ a: '1', b: '2' }, 2);
    assert.equal(c.get({ b: '2', a: '1' }), 3);
    assert.equal(c.get({ a: '1', b: '2' }), 3);
    // Values that look like separators do not collide.
    c.inc({ a: '1b=1:2', b: '' });
    assert.equal(c.get({ a: '1', b: '2' }), 3);
    assert.equal(
      r.render(),
      '# HELP t_total T.\n# TYPE t_total counter\nt_total{a="1",b="2"} 3\nt_total{a="1b=1:2",b=""} 1\n',
    );
  });

  it('renders a small registry exactly', () => {
    const r = new MetricsRegistry();
    const c = r.counter('requests_total', 'Requests served.');
    c.inc({ model: 'gpt2', status: 'ok' });
    c.inc({ status: 'ok', model: 'gpt2' }, 2);
    c.inc({ model: 'gpt2', status: 'error' });
    r.gauge('queue_depth', 'Requests waiting.').set(3);
    const h = r.histogram('request_duration_seconds', 'Time per request.', [0.1, 1, 2.5]);
    h.observe(0.5);
    h.observe(1);
    h.observe(3);
    h.observe(0.25, { model: 'gpt2' });
    r.counter('errors_total', 'Errors.');
    r.histogram('empty_seconds', 'Never observed.', [1]);

    const expected =
      '# HELP requests_total Requests served.\n' +
      '# TYPE requests_total counter\n' +
      'requests_total{model="gpt2",status="ok"} 3\n' +
      'requests_total{model="gpt2",status="error"} 1\n' +
      '# HELP queue_depth Requests waiting.\n' +
      '# TYPE queue_depth gauge\n' +
      'queue_depth 3\n' +
      '# HELP request_duration_seconds Time per request.\n' +
      '# TYPE request_duration_seconds histogram\n' +
      'request_duration_seconds_bucket{le="0.1"} 0\n' +
      'request_duration_seconds_bucket{le="1"} 2\n' +
      'request_duration_seconds_bucket{le="2.5"} 2\n' +
      'request_duration_seconds_bucket{le="+Inf"} 3\n' +
      'request_duration_seconds_sum 4.5\n' +
      'request_duration_seconds_count 3\n' +
      'request_duration_seconds_bucket{model="gpt2",le="0.1"} 0\n' +
      'request_duration_seconds_bucket{model="gpt2",le="1"} 1\n' +
      'request_duration_seconds_bucket{model="gpt2",le="2.5"} 1\n' +
      'request_duration_seconds_bucket{model="gpt2",le="+Inf"} 1\n' +
      'request_duration_seconds_sum{model="gpt2"} 0.25\n' +
      'request_duration_seconds_count{model="gpt2"} 1\n' +
      '# HELP errors_total Errors.\n' +
      '# TYPE errors_total counter\n' +
      'errors_total 0\n' +
      '# HELP empty_seconds Never observed.\n' +
      '# TYPE empty_seconds histogram\n';
    assert.equal(r.render(), expected);
    assert.equal(renderMetrics(r.snapshot()), expected);
  });

  it('snapshots are deep copies that survive a JSON round trip', () => {
    const r = new MetricsRegistry();
    r.counter('a_total', 'A.').inc({ x: 'q"uote' }, 2);
    const h = r.histogram('h_seconds', 'H.', DURATION_BUCKETS);
    h.observe(0.003, { x: 'y' });
    h.observe(45, { x: 'y' });
    r.gauge('g', 'G.').set(0.125);
    const snap = r.snapshot();
    const text = renderMetrics(snap);
    assert.equal(renderMetrics(JSON.parse(JSON.stringify(snap)) as MetricFamily[]), text);
    snap[0].samples[0].labels.x = 'changed';
    (snap[0].samples[0] as { value: number }).value = 99;
    const hs = snap[1];
    assert.ok(hs.type === 'histogram');
    hs.buckets[0] = 123;
    hs.samples[0].buckets[0] = 123;
    assert.equal(r.render(), text);
  });
});

describe('renderMetrics', () => {
  it('escapes label values and HELP text', () => {
    const r = new MetricsRegistry();
    r.counter('e_total', 'Back\\slash, "quotes" and\nnewline.').inc({ path: 'C:\\dir "x"\nnext' });
    assert.equal(
      r.render(),
      '# HELP e_total Back\\\\slash, "quotes" and\\nnewline.\n' +
        '# TYPE e_total counter\n' +
        'e_total{path="C:\\\\dir \\"x\\"\\nnext"} 1\n',
    );
  });

  it('formats numbers: integers, floats, NaN, ±Inf, and JSON nulls as NaN', () => {
    const families: MetricFamily[] = [
      {
        name: 'v',
        help: 'V.',
        type: 'gauge',
        samples: [
          { labels: { k: 'int' }, value: 42 },
          { labels: { k: 'big' }, value: 1e21 },
          { labels: { k: 'float' }, value: 0.1 },
          { labels: { k: 'small' }, value: 1e-7 },
          { labels: { k: 'neg' }, value: -3 },
          { labels: { k: 'nan' }, value: NaN },
          { labels: { k: 'inf' }, value: Infinity },
          { labels: { k: 'ninf' }, value: -Infinity },
          { labels: { k: 'null' }, value: null as unknown as number },
        ],
      },
    ];
    assert.equal(
      renderMetrics(families),
      '# HELP v V.\n# TYPE v gauge\n' +
        'v{k="int"} 42\nv{k="big"} 1e+21\nv{k="float"} 0.1\nv{k="small"} 1e-7\nv{k="neg"} -3\n' +
        'v{k="nan"} NaN\nv{k="inf"} +Inf\nv{k="ninf"} -Inf\nv{k="null"} NaN\n',
    );
  });

  it('prints HELP and TYPE for a family without samples, and nothing for no families', () => {
    assert.equal(
      renderMetrics([{ name: 'x', help: '', type: 'counter', samples: [] }]),
      '# HELP x \n# TYPE x counter\n',
    );
    assert.equal(renderMetrics([]), '');
  });
});

describe('withLabels and mergeFamilies', () => {
  function worker(id: string, ok: number, seconds: number[]): MetricFamily[] {
    const r = new MetricsRegistry();
    r.counter('tokens_total', 'Tokens.').inc({ model: 'm' }, ok);
    const h = r.histogram('step_seconds', 'Step.', [0.01, 0.1]);
    for (const s of seconds) h.observe(s);
    return withLabels(r.snapshot(), { worker: id });
  }

  it('withLabels tags every sample, replaces a label of the same name and leaves its input alone', () => {
    const input: MetricFamily[] = [
      { name: 'a', help: 'A.', type: 'counter', samples: [{ labels: { worker: 'old', x: '1' }, value: 1 }] },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        buckets: [1],
        samples: [{ labels: {}, buckets: [1], sum: 0.5, count: 1 }],
      },
    ];
    const copy = JSON.parse(JSON.stringify(input)) as MetricFamily[];
    const tagged = withLabels(input, { worker: 'w1' });
    assert.deepEqual(input, copy);
    assert.deepEqual(tagged, [
      { name: 'a', help: 'A.', type: 'counter', samples: [{ labels: { worker: 'w1', x: '1' }, value: 1 }] },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        buckets: [1],
        samples: [{ labels: { worker: 'w1' }, buckets: [1], sum: 0.5, count: 1 }],
      },
    ]);
    assert.throws(() => withLabels(input, { 'bad-name': 'x' }), /Invalid label name/);
    assert.throws(() => withLabels(input, { le: '1' }), /reserved/);
  });

  it('concatenates distinct label sets and sums identical ones, histograms bucket-wise', () => {
    const w1 = worker('w1', 3, [0.005, 0.05]);
    const w2 = worker('w2', 4, [0.5]);
    const api = new MetricsRegistry();
    api.counter('http_requests_total', 'HTTP requests.').inc({ code: '200' }, 7);

    const distinct = mergeFamilies(w1, w2, api.snapshot());
    assert.equal(
      renderMetrics(distinct),
      '# HELP tokens_total Tokens.\n' +
        '# TYPE tokens_total counter\n' +
        'tokens_total{model="m",worker="w1"} 3\n' +
        'tokens_total{model="m",worker="w2"} 4\n' +
        '# HELP step_seconds Step.\n' +
        '# TYPE step_seconds histogram\n' +
        'step_seconds_bucket{worker="w1",le="0.01"} 1\n' +
        'step_seconds_bucket{worker="w1",le="0.1"} 2\n' +
        'step_seconds_bucket{worker="w1",le="+Inf"} 2\n' +
        'step_seconds_sum{worker="w1"} 0.055\n' +
        'step_seconds_count{worker="w1"} 2\n' +
        'step_seconds_bucket{worker="w2",le="0.01"} 0\n' +
        'step_seconds_bucket{worker="w2",le="0.1"} 0\n' +
        'step_seconds_bucket{worker="w2",le="+Inf"} 1\n' +
        'step_seconds_sum{worker="w2"} 0.5\n' +
        'step_seconds_count{worker="w2"} 1\n' +
        '# HELP http_requests_total HTTP requests.\n' +
        '# TYPE http_requests_total counter\n' +
        'http_requests_total{code="200"} 7\n',
    );

    // The same worker id twice (label sets written in another key order): its samples are summed.
    const again = worker('w1', 10, [0.001, 1]).map((f) => ({
      ...f,
      samples: f.samples.map((s) => ({ ...s, labels: Object.fromEntries(Object.entries(s.labels).reverse()) })),
    })) as MetricFamily[];
    const summed = mergeFamilies(w1, again);
    assert.deepEqual(summed, [
      {
        name: 'tokens_total',
        help: 'Tokens.',
        type: 'counter',
        samples: [{ labels: { model: 'm', worker: 'w1' }, value: 13 }],
      },
      {
        name: 'step_seconds',
        help: 'Step.',
        type: 'histogram',
        buckets: [0.01, 0.1],
        samples: [{ labels: { worker: 'w1' }, buckets: [2, 3], sum: 0.005 + 0.05 + (0.001 + 1), count: 4 }],
      },
    ]);
    // Inputs are not modified by merging.
    assert.deepEqual(w1, worker('w1', 3, [0.005, 0.05]));
  });

  it('keeps the first family on a type or bucket conflict and drops the later one', () => {
    const first: MetricFamily[] = [
      { name: 'x', help: 'X.', type: 'counter', samples: [{ labels: {}, value: 1 }] },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        buckets: [1],
        samples: [{ labels: {}, buckets: [1], sum: 1, count: 1 }],
      },
    ];
    const conflicting: MetricFamily[] = [
      { name: 'x', help: 'X as a gauge.', type: 'gauge', samples: [{ labels: {}, value: 100 }] },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        buckets: [2],
        samples: [{ labels: {}, buckets: [5], sum: 9, count: 5 }],
      },
      { name: 'h', help: 'H.', type: 'counter', samples: [{ labels: {}, value: 5 }] },
      { name: 'x', help: 'Other help.', type: 'counter', samples: [{ labels: { a: 'b' }, value: 2 }] },
    ];
    assert.deepEqual(mergeFamilies(first, conflicting), [
      {
        name: 'x',
        help: 'X.',
        type: 'counter',
        samples: [
          { labels: {}, value: 1 },
          { labels: { a: 'b' }, value: 2 },
        ],
      },
      {
        name: 'h',
        help: 'H.',
        type: 'histogram',
        buckets: [1],
        samples: [{ labels: {}, buckets: [1], sum: 1, count: 1 }],
      },
    ]);
    assert.deepEqual(mergeFamilies(), []);
  });
});

describe('DURATION_BUCKETS', () => {
  it('is a frozen, strictly ascending list of finite bounds', () => {
    assert.ok(Object.isFrozen(DURATION_BUCKETS));
    assert.ok(DURATION_BUCKETS.length > 5);
    DURATION_BUCKETS.forEach((b, i) => {
      assert.ok(Number.isFinite(b) && b > 0);
      if (i > 0) assert.ok(b > DURATION_BUCKETS[i - 1]);
    });
  });
});
