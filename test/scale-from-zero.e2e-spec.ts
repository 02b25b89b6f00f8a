/**
 * Scaling from zero with real processes: the API up alone (its preparation step, then the API, no worker), a request
 * for a model no worker holds waits in its queue, up to --place-timeout, and the first worker that comes up takes
 * the load command and serves it. With no worker within --place-timeout, the request gets 503 and leaves no job
 * behind. The cold start (worker spawned to the waiting request's first token) is printed; bench/cold-start.bench.ts
 * measures it over several rounds.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Queue } from 'bullmq';
import { redisOptions } from '@switchyard/protocol';
import { coldStart } from './support/cold-start';
import { LaunchedPlatform } from './support/launched';
import { waitFor } from './support/platform';
import { modelDir } from './support/repo';

const MODEL = 'demo-tiny';
const WORKER_FLAGS = ['--intra-op-threads', '1', '--device-memory', '1GiB', '--host-memory', '0'];

describe('scale from zero: no worker up', () => {
  const platform = new LaunchedPlatform();
  const flags = ['--model-id', modelDir(MODEL)];
  before(() => platform.startApiAlone([...flags, '--place-timeout', '120s']));
  after(() => platform.stop());

  it('with none within --place-timeout, a request gets 503 and its job leaves the queue', async () => {
    // a second API on the same stores, with a short timeout
    const replica = await platform.startReplica([...flags, '--place-timeout', '1s'], { healthy: false });
    const queue = new Queue(MODEL, {
      connection: redisOptions(platform.redisUrl),
      prefix: `${platform.prefix}generate`,
    });
    try {
      const started = performance.now();
      const res = await fetch(`${replica.url}/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platform.auth() },
        body: JSON.stringify({ model: MODEL, inputs: 'Hello', parameters: { max_new_tokens: 4 } }),
      });
      const ms = performance.now() - started;
      const body = (await res.json()) as { error: string; error_type: string };
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.error_type, 'unhealthy');
      assert.match(body.error, /--place-timeout/);
      assert.ok(ms >= 1000 && ms < 10_000, `answered after ${Math.round(ms)} ms, not after --place-timeout 1s`);
      await waitFor('the job to leave the queue', async () => (await queue.getWaitingCount()) === 0);
    } finally {
      await queue.close();
      await replica.stop();
    }
  });

  it('queues the request until a worker comes up, which loads the model and serves it', async () => {
    // no worker is up yet: requests wait for one (--place-timeout), so the replica stays ready, degraded
    const health = await fetch(`${platform.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'degraded', missing: ['worker'] });
    const result = await coldStart(platform, MODEL, 'zero-w1', WORKER_FLAGS);
    assert.equal(result.json.status, 200, result.json.body);
    assert.equal(result.json.headers.get('x-served-model'), MODEL);
    assert.ok((JSON.parse(result.json.body) as { generated_text: string }).generated_text.length > 0);
    assert.equal(result.stream.status, 200);
    const last = result.stream.events.at(-1);
    assert.equal(typeof last?.generated_text, 'string', JSON.stringify(last));
    assert.ok(result.toFirstTokenMs > 0, 'the stream sent no token');
    console.log(
      `scale from zero: ${result.queued} requests queued with no worker; from the worker's spawn: load started ` +
        `${result.toLoadStartMs} ms, loaded ${result.toLoadedMs} ms (load ${Math.round(result.loadMs)} ms), first ` +
        `token of the waiting stream ${result.toFirstTokenMs} ms`,
    );
  });
});
