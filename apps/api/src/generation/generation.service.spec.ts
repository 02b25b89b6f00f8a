import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Heartbeat } from '@switchyard/protocol';
import { RedisNames } from '@switchyard/protocol';
import type { ResolvedModel } from '../registry/model-registry.service';
import type { RedisService } from '../redis/redis.service';
import type { Holders, WorkerDirectory } from '../redis/worker-directory.service';
import type { StreamHub } from './stream-hub';
import { GenerationService } from './generation.service';

/** The placement checks a waiting request's watchdog runs, with the worker directory and Redis faked. */
function placement(holders: () => Holders, placeTimeoutMs = 10_000) {
  const sent: unknown[] = [];
  const redis = {
    names: new RedisNames('t:'),
    redis: { get: () => Promise.resolve(null) },
    sendControl: (command: unknown) => (sent.push(command), Promise.resolve()),
  } as unknown as RedisService;
  const workers = { holders: () => Promise.resolve(holders()) } as unknown as WorkerDirectory;
  const service = new GenerationService(redis, workers, {} as StreamHub, { placeTimeoutMs });
  const model = { spec: { id: 'm' } } as unknown as ResolvedModel;
  // the watchdog's check, as it runs every 200 ms for a job that has not started
  const check = (since: number) =>
    (service as unknown as { checkPlacement(m: ResolvedModel, since: number): Promise<unknown> }).checkPlacement(
      model,
      since,
    );
  return { service, model, sent, check };
}

const worker = { id: 'w' } as Heartbeat;

describe('placement of a waiting request', () => {
  it('asks for a load again when the model it waits for is no longer held (evicted meanwhile)', async () => {
    const { sent, check } = placement(() => ({ loaded: [], loading: [], live: 1 }));
    assert.equal(await check(Date.now()), null);
    assert.equal(sent.length, 1, 'the watchdog sent a load command');
    assert.deepEqual((sent[0] as { type: string; spec: { id: string } }).type, 'load');
    assert.equal(await check(Date.now()), null);
    assert.equal(sent.length, 1, 'not again within the resend interval');
  });

  it('sends nothing while a worker holds or loads the model', async () => {
    const { sent, check } = placement(() => ({ loaded: [worker], loading: [], live: 1 }));
    assert.equal(await check(Date.now()), null);
    assert.equal(sent.length, 0);
  });

  it('with no worker up, waits (load asked) until --place-timeout, then answers 503', async () => {
    const { sent, check } = placement(() => ({ loaded: [], loading: [], live: 0 }), 1000);
    assert.equal(await check(Date.now()), null);
    assert.equal(sent.length, 1, 'the load command waits for the first worker');
    const late = (await check(Date.now() - 1500)) as { status: number; message: string };
    assert.equal(late.status, 503);
    assert.match(late.message, /--place-timeout/);
  });
});
