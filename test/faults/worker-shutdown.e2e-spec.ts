/**
 * The drain deadline on a real worker process: SIGTERM with generations longer than --drain-timeout in flight. The
 * running requests end at the deadline with an error entry, a request that has sent nothing goes back to the queue
 * (and another worker runs it), and the process exits 0 soon after.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { StreamEvent } from '@switchyard/protocol';
import { Platform, waitFor } from '../support/platform';
import { loadGoldens, modelDir } from '../support/repo';

/** demo-tiny holds 2048 positions: prompt + 2000 tokens fit, and eight rows take about 12 s here, well past 3 s. */
const NEW_TOKENS = 2000;
const ROWS = 8;
const DRAIN_MS = 3000;
/** How long past the deadline the process may take to exit. */
const EXIT_MARGIN_MS = 5000;

describe('worker shutdown: the drain deadline', () => {
  const platform = new Platform();
  const goldens = loadGoldens('demo-tiny');
  const prompts = goldens.cases.slice(0, ROWS + 1).map((c) => c.prompt_ids);
  // Room for ROWS rows (each needs its prompt's width plus NEW_TOKENS - 1), not for one more: the last request is
  // fetched, and waits in the engine having sent nothing but its start.
  const width = Math.max(...prompts.map((p) => p.length));
  const budget = (ROWS + 0.5) * (width + NEW_TOKENS - 1);

  before(async () => {
    await platform.startWorker('s1', [
      '--preload',
      modelDir('demo-tiny'),
      '--drain-timeout',
      `${DRAIN_MS}ms`,
      '--max-batch-total-tokens',
      String(Math.floor(budget)),
    ]);
    await platform.waitForLoaded('s1', 'demo-tiny');
  });
  after(() => platform.close());

  it('ends the running requests with an error at the deadline, requeues the one not started, exits 0', async () => {
    const s1 = platform.workers[0];
    const ids = await Promise.all(
      prompts.map((p) => platform.enqueue('demo-tiny', p, { maxNewTokens: NEW_TOKENS, ignoreEos: true })),
    );
    const running = ids.slice(0, ROWS);
    const waiting = ids[ROWS];
    const tokens = new Map<string, number>();
    const endedAt = new Map<string, number>();
    const streams = running.map((id) =>
      platform
        .readStream(id, 60_000, (event) => {
          if (event.type === 'token') tokens.set(id, (tokens.get(id) ?? 0) + 1);
        })
        .then((events) => {
          endedAt.set(id, Date.now());
          return events;
        }),
    );
    // the last request's first attempt writes its start and nothing else; the reader returns its next attempt's
    const waitingStream = platform.readStream(waiting, 120_000);
    const beat = await waitFor('all rows running and one request waiting in the engine', async () => {
      const b = await platform.heartbeat('s1');
      const model = b?.models.find((m) => m.id === 'demo-tiny');
      return model?.running === ROWS && model.waiting === 1 && running.every((id) => tokens.has(id)) ? b : undefined;
    });
    assert.ok(beat);

    const signalled = Date.now();
    s1.child.kill('SIGTERM');
    const code = await s1.exited;
    const exitMs = Date.now() - signalled;
    assert.equal(code, 0, s1.output().split('\n').slice(-30).join('\n'));
    assert.ok(exitMs < DRAIN_MS + EXIT_MARGIN_MS, `the worker exited ${exitMs} ms after SIGTERM`);

    for (const [i, events] of (await Promise.all(streams)).entries()) {
      const id = running[i];
      const last = events.at(-1) as StreamEvent;
      assert.equal(last.type, 'error', `request ${i} ended with ${last.type}`);
      assert.equal(last.type === 'error' && last.errorType, 'generation');
      assert.match(last.type === 'error' ? last.message : '', /worker shut down.*--drain-timeout 3000 ms/);
      const generated = tokens.get(id) ?? 0;
      assert.ok(generated > 0 && generated < NEW_TOKENS, `${generated} tokens`);
      // the drain let it run until the deadline, not less
      const ranMs = endedAt.get(id)! - signalled;
      assert.ok(ranMs >= DRAIN_MS - 100, `request ${i} ended ${ranMs} ms after SIGTERM`);
    }
    assert.match(s1.output(), new RegExp(`drain deadline: ${ROWS} requests ended with an error .*, 1 sent back`));

    // The request that had sent nothing is back in the queue, its stream holding only its first start ...
    assert.equal(await platform.queue('demo-tiny').getJobState(waiting), 'waiting');
    const firstAttempt = (await platform.redis.xrange(platform.names.stream(waiting), '-', '+')).map(
      ([, fields]) => fields[1],
    );
    assert.equal(firstAttempt.length, 1);
    assert.match(firstAttempt[0], /"type":"start".*"worker":"s1"/);
    // ... and another worker runs it to its end, as the next attempt
    await platform.startWorker('s2', ['--preload', modelDir('demo-tiny')]);
    const events = await waitingStream;
    assert.equal(events[0].type === 'start' && events[0].worker, 's2');
    assert.equal(events[0].attempt, 2);
    assert.equal(events.at(-1)!.type, 'final');
  });
});
