/**
 * Tracing end to end, on the platform as `npm start` starts it (the launcher, the API and a worker) with
 * OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver in this process. A request that names a client's
 * `traceparent` and a model no worker holds leaves one trace, the client's, across both processes: the API's server
 * span, its validation, placement and generate spans, and the workers' load command, model load, queue wait,
 * processing, engine queue, prefill and decode, each under the span that caused it. The batch delay is set past the
 * test's length, so every span seen here was exported by the processes' shutdown. A platform started without the
 * variable starts no tracing and answers no `traceparent`.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LaunchedPlatform } from './support/launched';
import { OtlpReceiver, ReceivedSpan } from './support/otlp-receiver';
import { modelDir } from './support/repo';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const CLIENT = `00-${TRACE_ID}-${CLIENT_SPAN}-01`;
const SERVER = 2;
const CLIENT_KIND = 3;
const CONSUMER = 5;

async function generate(platform: LaunchedPlatform, model: string | undefined): Promise<Response> {
  const res = await fetch(`${platform.url}/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: CLIENT, ...platform.auth() },
    body: JSON.stringify({ model, inputs: 'The quick brown fox', parameters: { max_new_tokens: 6 } }),
  });
  await res.text();
  return res;
}

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', () => {
  const receiver = new OtlpReceiver();
  const platform = new LaunchedPlatform();
  const tinyId = `tiny-trace-${randomUUID().slice(0, 8)}`;
  let response: Response;
  let spans: ReceivedSpan[] = [];
  let output = '';

  before(async () => {
    await receiver.start();
    await platform.start([], { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '600000' });
    const registered = await fetch(`${platform.url}/admin/models`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...platform.auth() },
      body: JSON.stringify({ id: tinyId, path: modelDir('demo-tiny') }),
    });
    assert.equal(registered.status, 201, await registered.text());
    response = await generate(platform, tinyId);
    output = platform.output();
    assert.equal(await platform.stop(), 0);
    spans = receiver.trace(TRACE_ID);
  });

  after(() => receiver.close());

  it('answers the request with a traceparent in the client’s trace', () => {
    assert.equal(response.status, 200);
    assert.match(response.headers.get('traceparent') ?? '', new RegExp(`^00-${TRACE_ID}-[\\da-f]{16}-01$`));
    assert.notEqual(response.headers.get('traceparent'), CLIENT);
    assert.match(output, /tracing: spans go to .* as switchyard-api/);
    assert.match(output, /tracing: spans go to .* as switchyard-worker/);
    assert.deepEqual(receiver.rejected, []);
  });

  it('exports the path’s spans in one trace across the API and the worker', () => {
    const one = (service: string, name: string) => {
      const found = spans.filter((s) => s.service === service && s.name === name);
      assert.equal(found.length, 1, `${service} ${name}: ${found.length} spans in ${names(spans)}`);
      return found[0];
    };
    const server = one('switchyard-api', 'POST /generate');
    const validate = one('switchyard-api', 'validate');
    const placement = one('switchyard-api', 'placement');
    const generate = one('switchyard-api', 'generate');
    const command = one('switchyard-worker', 'load command');
    const load = one('switchyard-worker', 'model load');
    const queue = one('switchyard-worker', 'queue wait');
    const processing = one('switchyard-worker', 'process');
    const engineQueue = one('switchyard-worker', 'engine queue');
    const prefill = one('switchyard-worker', 'prefill');
    const decode = one('switchyard-worker', 'decode');

    // who caused what: the client's span, the API's server span, and each span under the one that caused it
    const parentOf = (child: ReceivedSpan, parent: ReceivedSpan | string) =>
      assert.equal(child.parentSpanId, typeof parent === 'string' ? parent : parent.spanId, `${child.name}'s parent`);
    parentOf(server, CLIENT_SPAN);
    assert.equal(response.headers.get('traceparent'), `00-${TRACE_ID}-${server.spanId}-01`);
    for (const s of [validate, placement, generate]) parentOf(s, server);
    parentOf(command, placement);
    parentOf(load, command);
    parentOf(queue, generate);
    parentOf(processing, generate);
    for (const s of [engineQueue, prefill, decode]) parentOf(s, processing);

    assert.equal(server.kind, SERVER);
    assert.equal(generate.kind, CLIENT_KIND);
    assert.equal(processing.kind, CONSUMER);
    assert.equal(server.attributes['http.route'], '/generate');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(placement.attributes['switchyard.placement.load_requested'], true);
    assert.equal(placement.attributes['switchyard.placement.holders'], 0);
    assert.equal(command.attributes['switchyard.placement.target'], processing.attributes['switchyard.worker']);
    assert.match(String(load.attributes['switchyard.load.tier']), /^(page_cache|cold|unknown)$/);
    assert.equal(processing.attributes['switchyard.outcome'], 'success');
    assert.equal(processing.resource['service.instance.id'], processing.attributes['switchyard.worker']);
    for (const s of [validate, placement, generate, load, queue, processing]) {
      assert.equal(s.attributes['gen_ai.request.model'], tinyId, s.name);
    }
    assert.equal(decode.attributes['gen_ai.usage.output_tokens'], 6);
    assert.equal(generate.attributes['gen_ai.usage.output_tokens'], 6);
    assert.ok(Number(prefill.attributes['gen_ai.usage.input_tokens']) > 0);
    assert.ok(
      spans.every((s) => s.status !== 2),
      'no span failed',
    );
  });

  it('orders the spans as the request ran (one machine, one clock)', () => {
    const named = (name: string) => spans.find((s) => s.name === name)!;
    // Each span's times are anchored to Date.now() (whole milliseconds) when it starts, and the engine's phases come
    // from its own millisecond clock: spans of one process agree to a millisecond or two, not to a nanosecond.
    const notAfter = (a: bigint, b: bigint, what: string) => assert.ok(a <= b + 2_000_000n, what);
    const within = (inner: ReceivedSpan, outer: ReceivedSpan) => {
      notAfter(outer.startNs, inner.startNs, `${inner.name} starts within ${outer.name}`);
      notAfter(inner.endNs, outer.endNs, `${inner.name} ends within ${outer.name}`);
    };
    const server = named('POST /generate');
    for (const name of ['validate', 'placement', 'generate']) within(named(name), server);
    within(named('queue wait'), named('generate'));
    for (const name of ['engine queue', 'prefill', 'decode']) within(named(name), named('process'));
    // the API's generate ends once it has read the final event; the worker's processing, once its job is done with
    // (after writing that event): the engine's work, not the job's bookkeeping, falls within the API's span
    notAfter(named('generate').startNs, named('process').startNs, 'process starts within generate');
    notAfter(named('decode').endNs, named('generate').endNs, 'decode ends within generate');
    // validation, then placement, then the job: queued, taken once the model had loaded, then prefill and decode
    notAfter(named('validate').endNs, named('placement').startNs, 'validate, then placement');
    notAfter(named('placement').endNs, named('generate').startNs, 'placement, then generate');
    assert.equal(named('queue wait').endNs, named('process').startNs);
    notAfter(named('model load').endNs, named('process').startNs, 'the job waited for the load');
    notAfter(named('engine queue').endNs, named('prefill').startNs, 'engine queue, then prefill');
    assert.equal(named('prefill').endNs, named('decode').startNs);
  });
});

describe('tracing off (no OTLP endpoint)', () => {
  const platform = new LaunchedPlatform();

  before(() => platform.start([], { OTEL_EXPORTER_OTLP_ENDPOINT: '', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '' }));
  after(async () => assert.equal(await platform.stop(), 0));

  it('starts no tracing and answers no traceparent, whatever the client sent', async () => {
    const res = await generate(platform, undefined);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('traceparent'), null);
    assert.doesNotMatch(platform.output(), /tracing:/);
  });
});

function names(spans: ReceivedSpan[]): string {
  return spans.map((s) => `${s.service}:${s.name}`).join(', ');
}
