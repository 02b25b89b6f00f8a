/**
 * Tracing's one switch: with no OTLP endpoint nothing of the SDK is loaded and every span is OpenTelemetry's no-op;
 * with one, spans join the trace a carrier names and are exported over OTLP/HTTP, the last of them at shutdown.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OtlpReceiver } from '../../../test/support/otlp-receiver';
import { carrierOf, contextFrom, inSpan, recordSpan, ROOT_CONTEXT, trace, tracer } from './spans';
import { startTracing } from './tracing';

const CLIENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
const SDK_MODULE = /@opentelemetry[\\/](sdk-trace|exporter-|resources|core|otlp-)/;

describe('tracing', () => {
  const receiver = new OtlpReceiver();
  before(() => receiver.start());
  after(() => receiver.close());

  it('without an endpoint loads no SDK, records nothing and propagates nothing', async () => {
    const tracing = await startTracing('switchyard-test', { OTEL_BSP_SCHEDULE_DELAY: '10' });
    assert.equal(tracing.enabled, false);
    assert.deepEqual(
      Object.keys(require.cache).filter((path) => SDK_MODULE.test(path)),
      [],
    );
    const parent = contextFrom({ traceparent: CLIENT });
    assert.equal(trace.getSpan(parent), undefined);
    const span = tracer.startSpan('validate', {}, parent);
    assert.equal(span.isRecording(), false);
    span.end();
    assert.deepEqual(carrierOf(trace.setSpan(parent, span)), {});
    await tracing.shutdown();
  });

  it('with one, joins the carrier’s trace and exports what is left at shutdown', async () => {
    // batches only at shutdown: what arrives was flushed by it
    process.env.OTEL_BSP_SCHEDULE_DELAY = '600000';
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    const tracing = await startTracing('switchyard-test', process.env, 'instance-1');
    assert.equal(tracing.enabled, true);
    const parent = contextFrom({ traceparent: CLIENT });
    const { traceparent } = await inSpan('validate', parent, { 'gen_ai.request.model': 'demo' }, (ctx) =>
      carrierOf(ctx),
    );
    assert.match(traceparent ?? '', /^00-0af7651916cd43dd8448eb211c80319c-[\da-f]{16}-01$/);
    const now = Date.now();
    const decode = recordSpan('decode', contextFrom({ traceparent }), now - 50, now, {
      'gen_ai.usage.output_tokens': 5,
    });
    assert.equal(trace.getSpan(decode)?.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
    await assert.rejects(inSpan('placement', ROOT_CONTEXT, {}, () => Promise.reject(new Error('no worker'))));
    assert.equal(receiver.spans.length, 0);
    await tracing.shutdown();
    const byName = new Map(receiver.spans.map((s) => [s.name, s]));
    assert.deepEqual([...byName.keys()].sort(), ['decode', 'placement', 'validate']);
    for (const span of receiver.spans) {
      assert.equal(span.service, 'switchyard-test');
      assert.equal(span.resource['service.instance.id'], 'instance-1');
    }
    const validate = byName.get('validate')!;
    const decodeSpan = byName.get('decode')!;
    assert.equal(validate.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(validate.parentSpanId, 'b7ad6b7169203331');
    assert.equal(decodeSpan.parentSpanId, validate.spanId);
    assert.equal(decodeSpan.endNs - decodeSpan.startNs, 50_000_000n);
    assert.equal(decodeSpan.attributes['gen_ai.usage.output_tokens'], 5);
    assert.equal(byName.get('placement')!.status, 2);
    assert.equal(byName.get('placement')!.parentSpanId, '');
    assert.deepEqual(receiver.rejected, []);
  });
});
