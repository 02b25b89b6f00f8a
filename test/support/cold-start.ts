/**
 * Scaling from zero, measured: with an API up and no worker at all, a streamed request and a JSON request for a
 * model go in; once both wait in the model's BullMQ queue (its waiting count, never a sleep), a worker process is
 * started, takes the load command the requests left on the control queue, loads the model and serves them. Used by
 * test/scale-from-zero.e2e-spec.ts (which asserts the outcome) and bench/cold-start.bench.ts (which reports the
 * timings).
 */
import { Queue } from 'bullmq';
import { redisOptions } from '@switchyard/protocol';
import type { LaunchedPlatform } from './launched';
import { waitFor } from './platform';

export interface ColdStart {
  /** The streamed request: its status, its SSE events' data, and the epoch ms its first token arrived (0: none). */
  stream: { status: number; events: { token?: { text: string }; generated_text?: string | null; error?: string }[] };
  /** The JSON request's status and body. */
  json: { status: number; body: string; headers: Headers };
  /** The most jobs seen waiting in the model's queue before the worker was started. */
  queued: number;
  /** Milliseconds from the worker's spawn: to its load of the model starting, to the model loaded, to the first token. */
  toLoadStartMs: number;
  toLoadedMs: number;
  toFirstTokenMs: number;
  /** The worker's own timing of the load. */
  loadMs: number;
}

/**
 * Sends the two requests for `model` (with no worker up), waits until both are queued, then starts worker
 * `workerId` with `workerFlags` and waits for both answers.
 */
export async function coldStart(
  platform: LaunchedPlatform,
  model: string,
  workerId: string,
  workerFlags: string[],
): Promise<ColdStart> {
  const queue = new Queue(model, {
    connection: redisOptions(platform.redisUrl),
    prefix: `${platform.prefix}generate`,
  });
  try {
    const post = (path: string, prompt: string) =>
      fetch(`${platform.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platform.auth() },
        body: JSON.stringify({ model, inputs: prompt, parameters: { max_new_tokens: 8 } }),
        signal: AbortSignal.timeout(180_000),
      });
    let firstTokenAt = 0;
    const stream = post('/generate_stream', 'The future of AI is').then(async (res) => {
      const events: ColdStart['stream']['events'] = [];
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of res.body ?? []) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffered.indexOf('\n\n')) >= 0) {
          const entry = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (!entry.startsWith('data:')) continue;
          const event = JSON.parse(entry.slice(5)) as ColdStart['stream']['events'][number];
          if (event.token && firstTokenAt === 0) firstTokenAt = Date.now();
          events.push(event);
        }
      }
      return { status: res.status, events };
    });
    const json = post('/generate', 'Once upon a time').then(async (res) => ({
      status: res.status,
      body: await res.text(),
      headers: res.headers,
    }));
    const queued = await waitFor(
      'both requests waiting in the queue',
      async () => {
        const waiting = await queue.getWaitingCount();
        return waiting >= 2 ? waiting : undefined;
      },
      30_000,
    );
    const worker = platform.spawnWorker(workerId, workerFlags);
    const [streamed, answered] = await Promise.all([stream, json]);
    const events = await platform.events();
    const at = (type: string) => events.find((e) => e.worker === workerId && e.model === model && e.type === type);
    const started = at('load_started');
    const loaded = at('loaded');
    if (!started || !loaded) throw new Error(`worker ${workerId} left no load of ${model}:\n${worker.output()}`);
    return {
      stream: streamed,
      json: answered,
      queued,
      toLoadStartMs: started.at - worker.spawnedAt,
      toLoadedMs: loaded.at - worker.spawnedAt,
      toFirstTokenMs: firstTokenAt === 0 ? NaN : firstTokenAt - worker.spawnedAt,
      loadMs: loaded.ms ?? NaN,
    };
  } finally {
    await queue.close();
  }
}
