/**
 * The API's request metrics under TGI's names (prom-client, in a registry of its own). The in-flight cap they
 * report is generation/admission.ts.
 */
import { Injectable } from '@nestjs/common';
import { counter, DURATION_BUCKETS, gauge, histogram, MetricFamilies } from '@switchyard/protocol';

const TOKEN_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

const API_METRICS = {
  count: counter('tgi_request_count', 'Generation requests received'),
  success: counter('tgi_request_success', 'Generation requests that succeeded'),
  failure: counter('tgi_request_failure', 'Generation requests that failed, by error type', ['err']),
  duration: histogram('tgi_request_duration', 'Seconds per request, end to end', DURATION_BUCKETS),
  validationDuration: histogram(
    'tgi_request_validation_duration',
    'Seconds spent validating and tokenizing',
    DURATION_BUCKETS,
  ),
  queueDuration: histogram(
    'tgi_request_queue_duration',
    'Seconds from queueing to the first forward call',
    DURATION_BUCKETS,
  ),
  inferenceDuration: histogram(
    'tgi_request_inference_duration',
    'Seconds from the first forward call to the last token',
    DURATION_BUCKETS,
  ),
  timePerToken: histogram(
    'tgi_request_mean_time_per_token_duration',
    'Mean seconds per generated token',
    DURATION_BUCKETS,
  ),
  generatedTokens: histogram('tgi_request_generated_tokens', 'Tokens generated per request', TOKEN_BUCKETS),
  inputLength: histogram('tgi_request_input_length', 'Prompt tokens per request', TOKEN_BUCKETS),
  maxNewTokens: histogram('tgi_request_max_new_tokens', 'max_new_tokens per request', TOKEN_BUCKETS),
  requests: counter(
    'switchyard_requests_total',
    'Generation requests answered, by route, model (the one served, else the one asked for, else none) and HTTP status',
    ['route', 'model', 'status'],
  ),
  timeToFirstToken: histogram(
    'switchyard_time_to_first_token_seconds',
    "Seconds from a streamed request's arrival to its first token on the wire, by served model",
    DURATION_BUCKETS,
    ['model'],
  ),
  fallbacks: counter(
    'switchyard_fallbacks_total',
    'Requests moved to a fallback model, by the model they left, the one they went to, and why',
    ['from', 'to', 'reason'],
  ),
  inFlight: gauge('switchyard_requests_in_flight', 'Generation requests being served'),
  queueWaiting: gauge(
    'switchyard_queue_waiting_jobs',
    "Jobs waiting in each model's queue, read from Redis at each scrape, so there with no worker running (every " +
      'API replica reports the same count: take the max over replicas, not the sum)',
    ['model'],
  ),
  openStreams: gauge('switchyard_open_streams', 'Token streams the API is reading'),
  dependencyUp: gauge(
    'switchyard_dependency_up',
    'Whether the API reaches each of its stores (postgres, redis): 1 or 0',
    ['dependency'],
  ),
  lastGoodAnswers: counter(
    'switchyard_last_good_answers_total',
    'Lookups answered from their last good value because Postgres could not be read, by cache (api_keys, registry)',
    ['cache'],
  ),
};

@Injectable()
export class ApiMetrics extends MetricFamilies(API_METRICS) {}
