/**
 * A worker killed mid-request, seen from the API, on the platform as `npm start` starts it: the launcher starts
 * the worker again, the job runs again once its lock lapses, a JSON request still gets its whole answer, and a
 * stream that had already sent tokens ends with an error event rather than hanging or mixing attempts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitFor } from './support/platform';
import { LaunchedPlatform } from './support/launched';
import { loadGoldens } from './support/repo';

/** Greedy, demo-small repeats itself on this prompt up to the token limit: seconds of work. */
const LONG_PROMPT = '<|im_start|>user\nTell me a fortune.<|im_end|>\n<|im_start|>assistant\n';

interface WorkerView {
  id: string;
  pid: number;
  models: { id: string; state: string; active: number }[];
}

describe('API recovery: a worker killed mid-request', () => {
  const platform = new LaunchedPlatform();
  const goldens = loadGoldens('demo-small');

  before(() => platform.start(['--lock-duration', '2s']));
  after(async () => {
    assert.equal(await platform.stop(), 0);
  });

  async function workers(): Promise<WorkerView[]> {
    const res = await fetch(`${platform.url}/admin/workers`, { headers: platform.auth() });
    return (await res.json()) as WorkerView[];
  }

  it('reruns a JSON request whole, ends a started stream with an error, and restarts the worker', async () => {
    const headers = { 'content-type': 'application/json', ...platform.auth() };
    // the golden case whose prompt is LONG_PROMPT: its first tokens are known
    const c = goldens.cases.find((g) => g.prompt === LONG_PROMPT)!;
    const json = fetch(`${platform.url}/generate`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ inputs: LONG_PROMPT, parameters: { max_new_tokens: 1500, details: true } }),
    });
    const stream = await fetch(`${platform.url}/generate_stream`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ inputs: LONG_PROMPT, parameters: { max_new_tokens: 1500 } }),
    });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    while ((text.match(/data:/g) ?? []).length < 3) text += decoder.decode((await reader.read()).value);

    const [victim] = await waitFor('both requests running on the worker', async () => {
      const list = await workers();
      return list.length === 1 && list[0].models.some((m) => m.active === 2) ? list : undefined;
    });
    process.kill(victim.pid, 'SIGKILL');

    // the stream had sent tokens: it ends with an error event, and nothing after it
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-1)!.slice('data:'.length)) as { error?: string; error_type?: string };
    assert.equal(last.error_type, 'generation', events.at(-1));
    assert.match(last.error!, /worker/);

    // the JSON request ran again from the start, on the restarted worker, and came back whole
    const res = await json;
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-attempts'), '2');
    const body = (await res.json()) as { details: { tokens: { id: number }[] } };
    assert.ok(body.details.tokens.length > c.greedy_ids.length);
    assert.deepEqual(
      body.details.tokens.slice(0, c.greedy_ids.length).map((t) => t.id),
      c.greedy_ids,
    );
    const [restarted] = await workers();
    assert.notEqual(restarted.pid, victim.pid);
    assert.match(platform.output(), /restarting it/);
  });
});
