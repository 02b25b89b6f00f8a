import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { TokenEvent } from '@switchyard/batching';
import { ANONYMOUS } from '../auth/api-keys.service';
import { ApiError } from '../common/api-error';
import type { GenerationOutcome } from './generation.service';
import type { PreparedRequest } from './inference.service';
import { requestTimings, StreamRelay, usageRecord } from './stream-relay';

/** A response: an emitter of `close`, finished or not. */
function response(): EventEmitter & { writableFinished: boolean } {
  return Object.assign(new EventEmitter(), { writableFinished: false });
}

const prepared = {
  model: { spec: { id: 'small' } },
  inputIds: [1, 2, 3],
  parameters: { maxNewTokens: 20 },
  arrived: 1000,
  validationMs: 2,
} as unknown as PreparedRequest;

const outcome = {
  final: { inputTokens: 3, inferenceMs: 80, queueMs: 5, details: { generatedTokens: 4, finishReason: 'length' } },
  queuedAt: 10_000,
  startedAt: 10_030,
  attempt: 1,
} as unknown as GenerationOutcome;

const token = { type: 'token' } as unknown as TokenEvent;

describe('stream relay', () => {
  it('aborts when the client goes away before the response ends, and not after', () => {
    const res = response();
    const relay = new StreamRelay(res);
    res.emit('close');
    assert.ok(relay.signal.aborted);

    const done = response();
    const finished = new StreamRelay(done);
    done.writableFinished = true;
    done.emit('close');
    assert.ok(!finished.signal.aborted);
  });

  it('stops listening once detached', () => {
    const res = response();
    const relay = new StreamRelay(res);
    relay.detach();
    assert.equal(res.listenerCount('close'), 0);
    res.emit('close');
    assert.ok(!relay.signal.aborted);
  });

  it("counts each attempt's streamed tokens from zero, keeps the first token's time, and relays each", () => {
    const relay = new StreamRelay(response());
    const seen: PreparedRequest[] = [];
    assert.equal(relay.attempt(prepared, undefined), undefined, 'nothing to relay when the route does not stream');
    const onToken = relay.attempt(prepared, (_, p) => seen.push(p))!;
    assert.ok(!relay.tokensSent());
    onToken(token);
    assert.ok(relay.tokensSent());
    const first = relay.firstTokenAt;
    assert.ok(first > 0);
    onToken(token);
    assert.equal(relay.firstTokenAt, first);
    assert.deepEqual(seen, [prepared, prepared]);
    relay.attempt(prepared, () => undefined);
    assert.ok(!relay.tokensSent(), 'a new attempt has sent nothing yet');
  });

  it("times a request as TGI does: queue from the API's enqueue, time per token over the generated ones", () => {
    assert.deepEqual(requestTimings(prepared, outcome, 1200), {
      totalMs: 200,
      validationMs: 2,
      queueMs: 35,
      inferenceMs: 80,
      timePerTokenMs: 20,
    });
    const notStarted = { ...outcome, startedAt: 0, final: { ...outcome.final, details: { generatedTokens: 0 } } };
    const t = requestTimings(prepared, notStarted as unknown as GenerationOutcome, 1200);
    assert.equal(t.queueMs, 5);
    assert.equal(t.timePerTokenMs, 80);
  });

  it('records a served request, and a failed one with what is known of it', () => {
    const base = { requestId: 'r1', principal: ANONYMOUS, route: '/generate', started: 100, now: 400 };
    const timings = requestTimings(prepared, outcome, 1200);
    const served = usageRecord({
      ...base,
      requested: 'big',
      prepared,
      outcome,
      failure: null,
      timings,
      firstTokenAt: 150,
    });
    assert.deepEqual(
      { ...served, createdAt: null },
      {
        requestId: 'r1',
        keyId: null,
        requestedModel: 'big',
        servedModel: 'small',
        route: '/generate',
        promptTokens: 3,
        generatedTokens: 4,
        finishReason: 'length',
        status: 200,
        errorType: null,
        queueMs: 35,
        ttftMs: 50,
        totalMs: 300,
        createdAt: null,
      },
    );
    const failed = usageRecord({
      ...base,
      requested: 'big',
      prepared,
      outcome: null,
      failure: ApiError.overloaded(),
      timings: null,
      firstTokenAt: 0,
    });
    assert.equal(failed.servedModel, null);
    assert.equal(failed.promptTokens, 3, 'the validated prompt, where the request got that far');
    assert.equal(failed.status, 429);
    assert.equal(failed.errorType, 'overloaded');
    assert.equal(failed.ttftMs, null);
    const early = usageRecord({
      ...base,
      requested: null,
      prepared: null,
      outcome: null,
      failure: ApiError.validation('x'),
      timings: null,
      firstTokenAt: 0,
    });
    assert.equal(early.promptTokens, 0);
    assert.equal(early.requestedModel, null);
  });
});
