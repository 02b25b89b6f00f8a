/**
 * Tracing for every Switchyard process, one switch for all: the OpenTelemetry SDK starts only when an OTLP endpoint
 * is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and then exports spans in
 * batches over OTLP/HTTP (JSON) and reads and writes W3C trace context. Without one, nothing of the SDK is even
 * loaded: the OpenTelemetry API's tracer stays its no-op, whose spans record nothing, and no context propagates.
 * The SDK reads its own `OTEL_*` variables (batching, sampler, timeouts, resource attributes).
 */
import { propagation, trace } from '@opentelemetry/api';

export interface Tracing {
  /** Whether spans are recorded and exported. */
  readonly enabled: boolean;
  /** Where spans go, when enabled. */
  readonly endpoint: string | null;
  /** Exports the spans still buffered and stops the SDK (bounded); a no-op when disabled. */
  shutdown(): Promise<void>;
}

export const TRACING_DISABLED: Tracing = { enabled: false, endpoint: null, shutdown: () => Promise.resolve() };

/** How long a shutdown waits for the last export: a collector that does not answer must not hold the process. */
const SHUTDOWN_TIMEOUT_MS = 3000;

/**
 * Starts tracing for this process when `env` names an OTLP endpoint. `serviceName` is the resource's `service.name`
 * and `instanceId` its `service.instance.id`; `OTEL_RESOURCE_ATTRIBUTES` adds others. `OTEL_SERVICE_NAME` does not
 * rename it: the launcher hands one environment to the API and to its workers, which must stay apart.
 */
export async function startTracing(serviceName: string, env: NodeJS.ProcessEnv, instanceId?: string): Promise<Tracing> {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint || env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return TRACING_DISABLED;
  // loaded here only: a process that does not trace never loads the SDK
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, resources, { W3CTraceContextPropagator }] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-base'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/core'),
    ]);
  const { ATTR_SERVICE_NAME } = await import('@opentelemetry/semantic-conventions');
  const own = resources.resourceFromAttributes({
    [ATTR_SERVICE_NAME]: serviceName,
    ...(instanceId === undefined ? {} : { 'service.instance.id': instanceId }),
  });
  const provider = new BasicTracerProvider({
    resource: resources
      .defaultResource()
      .merge(resources.detectResources({ detectors: [resources.envDetector] }))
      .merge(own),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  let stopped: Promise<void> | null = null;
  return {
    enabled: true,
    endpoint,
    shutdown: () =>
      (stopped ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_TIMEOUT_MS)));
        await Promise.race([provider.shutdown().catch(() => undefined), late]);
        clearTimeout(timer);
      })()),
  };
}
