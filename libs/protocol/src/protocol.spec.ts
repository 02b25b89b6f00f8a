import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultParameters } from '@switchyard/batching';
import {
  ControlCommand,
  decodeInboxEntry,
  decodeStreamEntry,
  encodeInboxEntry,
  encodeStreamEvent,
  GenerateJob,
  parseControlCommand,
  parseGenerateJob,
  parseLoadError,
  StreamEvent,
  STREAM_FIELD,
} from './protocol';
import { ProtocolError } from './parse';

const job: GenerateJob = {
  requestId: 'r1',
  model: 'tiny',
  inputIds: [1, 2, 3],
  parameters: defaultParameters(),
  queuedAt: 1_700_000_000_000,
  notify: 'api-1',
  keepAliveMs: -1,
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'vendor=value',
};

const spec = { id: 'tiny', path: '/models/tiny', pinned: false, maxInputTokens: null, maxTotalTokens: 512 };
const token: StreamEvent = {
  type: 'token',
  attempt: 1,
  index: 0,
  token: { id: 7, text: 'a', logprob: -0.5, special: false },
  topTokens: [],
};
const final: StreamEvent = {
  type: 'final',
  attempt: 1,
  generatedText: 'a',
  queueMs: 1,
  inferenceMs: 2,
  inputTokens: 3,
  details: { finishReason: 'length', generatedTokens: 1, seed: null, prefill: [], tokens: [], topTokens: [] },
};

describe('parseGenerateJob', () => {
  it('takes a job as the API writes it, through JSON', () => {
    assert.deepEqual(parseGenerateJob(JSON.parse(JSON.stringify(job))), job);
    const { notify: _n, keepAliveMs: _k, traceparent: _t, tracestate: _s, ...bare } = job;
    assert.deepEqual(parseGenerateJob(bare), bare);
  });

  it('refuses a malformed payload with a ProtocolError naming the fields', () => {
    const cases: [unknown, RegExp][] = [
      [null, /malformed generate job: \(payload\)/],
      [{ ...job, inputIds: ['1'] }, /inputIds\.0/],
      [{ ...job, queuedAt: undefined }, /queuedAt/],
      [{ ...job, traceparent: '00-0af7651916cd43dd8448eb211c80319c' }, /traceparent/],
      [{ ...job, parameters: { ...job.parameters, maxNewTokens: 1.5 } }, /parameters\.maxNewTokens/],
      [{ ...job, parameters: { doSample: true } }, /parameters\.temperature/],
      [{ ...job, notify: 'a:b' }, /notify/],
    ];
    for (const [bad, message] of cases) {
      assert.throws(
        () => parseGenerateJob(bad),
        (err: Error) => err instanceof ProtocolError && message.test(err.message),
        JSON.stringify(bad),
      );
    }
  });
});

describe('parseControlCommand', () => {
  it('takes load and unload commands', () => {
    const load: ControlCommand = {
      type: 'load',
      spec: { ...spec, quantization: 'q8' },
      reason: 'replica',
      exclude: ['w1'],
    };
    assert.deepEqual(parseControlCommand(JSON.parse(JSON.stringify(load))), load);
    assert.deepEqual(parseControlCommand({ type: 'unload', model: 'tiny' }), { type: 'unload', model: 'tiny' });
  });

  it('refuses unknown types, reasons and specs', () => {
    for (const bad of [
      { type: 'reload', model: 'tiny' },
      { type: 'unload' },
      { type: 'load', spec: { ...spec, quantization: null }, reason: 'because' },
      { type: 'load', spec: { ...spec, quantization: null, id: 'a:b' }, reason: 'request' },
      { type: 'load', spec: { id: 'tiny' }, reason: 'request' },
      'load',
    ]) {
      assert.throws(() => parseControlCommand(bad), /malformed control command/, JSON.stringify(bad));
    }
  });
});

describe('decodeStreamEntry and decodeInboxEntry', () => {
  it('read back what the encoders write', () => {
    const start: StreamEvent = { type: 'start', worker: 'w1', attempt: 1, at: 5 };
    const error: StreamEvent = { type: 'error', attempt: 2, errorType: 'cancelled', message: 'gone' };
    const last: StreamEvent = { ...final, lastToken: { type: 'token', index: 0, token: token.token, topTokens: [] } };
    for (const event of [start, token, final, last, error]) {
      assert.deepEqual(decodeStreamEntry([STREAM_FIELD, encodeStreamEvent(event)]), event);
    }
    const entry: [string, StreamEvent][] = [
      ['r1', start],
      ['r1', token],
      ['r2', error],
    ];
    assert.deepEqual(decodeInboxEntry(['x', '1', STREAM_FIELD, encodeInboxEntry(entry)]), entry);
  });

  it('return null for entries that are not ours, and leave out events that are not events', () => {
    for (const fields of [[], ['x', '{}'], [STREAM_FIELD, '{'], [STREAM_FIELD, '[]'], [STREAM_FIELD, 'null']]) {
      assert.equal(decodeStreamEntry(fields), null, JSON.stringify(fields));
    }
    for (const bad of [
      { type: 'token', attempt: 1, index: 0 },
      { ...token, attempt: undefined },
      { ...final, details: {} },
      { type: 'error', attempt: 1, errorType: 'oops', message: '' },
      { type: 'start', worker: 'w1', at: 0 },
    ]) {
      assert.equal(decodeStreamEntry([STREAM_FIELD, JSON.stringify(bad)]), null, JSON.stringify(bad));
    }
    assert.equal(decodeInboxEntry([STREAM_FIELD, '{"r1": {}}']), null);
    const mixed = JSON.stringify([['r1', token], ['r2', { type: 'token' }], [3, token], 'junk', ['r3', final]]);
    assert.deepEqual(decodeInboxEntry([STREAM_FIELD, mixed]), [
      ['r1', token],
      ['r3', final],
    ]);
  });
});

describe('parseLoadError', () => {
  it('reads what a worker writes, and null for anything else', () => {
    const failure = { worker: 'w1', error: 'no room', kind: 'cannot place', at: 5 };
    assert.deepEqual(parseLoadError(JSON.stringify(failure)), failure);
    for (const bad of [
      '{',
      'null',
      '{}',
      JSON.stringify({ ...failure, kind: 'oops' }),
      JSON.stringify({ ...failure, at: '5' }),
    ]) {
      assert.equal(parseLoadError(bad), null, bad);
    }
  });
});
