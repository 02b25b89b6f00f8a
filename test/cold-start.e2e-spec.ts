/**
 * Scaling workers from zero, as the Kubernetes deployment does it (deploy/k8s, KEDA): with `--place-timeout`
 * and no worker running, /health stays 200 (degraded), a request waits in its model's queue, the API's
 * switchyard_queue_waiting_jobs (what the KEDA trigger sums) counts it, and a worker started then, as KEDA would,
 * takes the load command and the job: the request succeeds.
 */
import assert from 'node:assert/strict';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LaunchedPlatform } from './support/launched';
import { waitFor } from './support/platform';
import { REPO_ROOT } from './support/repo';

const platform = new LaunchedPlatform();
let worker: ChildProcess | null = null;

before(async () => {
  await platform.start(['--num-workers', '0', '--place-timeout', '60s']);
});

after(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker!.once('exit', resolve));
    worker.kill('SIGTERM');
    await exited;
  }
  assert.equal(await platform.stop(), 0);
});

describe('a cold start from zero workers', () => {
  it('keeps /health ready, queues the request where the scaler counts it, and serves it once a worker starts', async () => {
    const health = await fetch(`${platform.url}/health`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: 'degraded', missing: ['worker'] });

    const info = (await (await fetch(`${platform.url}/info`)).json()) as { model_id: string };
    const response = fetch(`${platform.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...platform.auth() },
      body: JSON.stringify({ inputs: 'Love is', parameters: { max_new_tokens: 3 } }),
    });
    await waitFor(
      'the waiting job in /metrics',
      async () => (await platform.metric('switchyard_queue_waiting_jobs', { model: info.model_id })) === 1,
      10_000,
    );

    worker = spawn(
      process.execPath,
      [
        join(REPO_ROOT, 'dist/apps/gpu-worker/src/main.js'),
        '--worker-id',
        'cold-start-1',
        '--redis-url',
        platform.redisUrl,
        '--redis-prefix',
        platform.prefix,
        '--intra-op-threads',
        '1',
      ],
      { cwd: REPO_ROOT, stdio: 'ignore' },
    );
    const res = await response;
    assert.equal(res.status, 200, await res.clone().text());
    const body = (await res.json()) as { generated_text: string };
    assert.equal(typeof body.generated_text, 'string');
    assert.equal(res.headers.get('x-served-model'), info.model_id);
    assert.equal(await platform.metric('switchyard_queue_waiting_jobs', { model: info.model_id }), 0);
  });
});
