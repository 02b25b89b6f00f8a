/**
 * The thread side of `RemoteEngine`: a worker thread that loads one model, runs its engine and writes its
 * requests' token streams to Redis itself. onnxruntime-node runs `session.run` on the calling thread, so the
 * engine lives here and the worker's main thread stays free for BullMQ locks and job fetching while a step
 * computes. Tokens go from this thread straight to Redis, one command per step: the main thread hears only of
 * requests that ended (once their last entry is written) and, a few times a second, of the steps run.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  compileGrammarOffThread,
  Engine,
  EngineConfig,
  EngineEvent,
  EngineRequest,
  StepStats,
} from '@switchyard/batching';
import { RedisNames } from '@switchyard/protocol';
import {
  CacheLayout,
  loadModel,
  LoadedModel,
  LoadOptions,
  MemoryEstimate,
  ModelError,
  ModelInfo,
  pageCacheTier,
} from '@switchyard/models';
import { createRedis } from '@switchyard/protocol';
import { StreamWriter } from '../streams/stream-writer';

/** What a thread is started with, before it knows its model: it loads its modules and opens its connection. */
export interface EngineThreadData {
  /** Where the token streams go. */
  streams: { redisUrl: string; redisPrefix: string; workerId: string };
  /** Per-request cancel flags, set by the main thread (see `RemoteEngine.submit`). */
  cancelFlags: Int32Array;
}

/** The model a started thread loads: its first message. */
export interface LoadRequest {
  dir: string;
  session: Partial<LoadOptions>;
  engine: Partial<EngineConfig>;
}

/**
 * How a request ended: 'success', the error type, `SHUTDOWN` (ended by the drain deadline with an error entry), or
 * `REQUEUE` (withdrawn by the drain deadline before any token was written: its job goes back to the queue).
 */
export type Outcome = string;
export const SHUTDOWN: Outcome = 'shutdown';
export const REQUEUE: Outcome = 'requeue';

/**
 * When a finished request's phases began in the engine (epoch milliseconds, this machine's clock), for its trace:
 * submitted (its wait for a batch slot begins), admitted (its prefill begins), its first token (prefill done), and
 * its end; taken from the final event's `queueMs` and `inferenceMs` and the time its first token came out.
 */
export interface EngineTimeline {
  submittedAt: number;
  admittedAt: number;
  firstTokenAt: number;
  endedAt: number;
  inputTokens: number;
  generatedTokens: number;
}

/** Main thread → engine thread. */
export type ToEngineThread =
  | {
      type: 'submit';
      request: Omit<EngineRequest, 'signal'>;
      attempt: number;
      startedAt: number;
      /** The inbox of the API instance that follows the request, or null for the request's own stream. */
      inbox: string | null;
      /** The request's cancel flag, or -1 for none. */
      slot: number;
    }
  | { type: 'cancel'; id: string }
  /**
   * The drain deadline: every open request ends now. One that has written a token gets an error entry with this
   * message; one that has not is withdrawn without a word (outcome `REQUEUE`), for its job to run elsewhere.
   */
  | { type: 'abandon'; message: string }
  | { type: 'release' }
  /** The first message: the model to load (a thread is started before it is needed, with its modules loaded). */
  | ({ type: 'load' } & LoadRequest);

/** Engine thread → main thread. */
export type FromEngineThread =
  | {
      type: 'ready';
      loadMs: number;
      cacheLayout: CacheLayout;
      info: ModelInfo;
      memory: MemoryEstimate;
      /** Milliseconds per step of the load (read, hash, quantize, rewrite, session, check, warmup). */
      timings: Record<string, number>;
      /** Whether the weights were in the page cache when the load began. */
      tier: 'page_cache' | 'cold' | 'unknown';
    }
  /** A long step of the load, for the worker's log. */
  | { type: 'progress'; message: string }
  | { type: 'failed'; message: string; modelError: boolean }
  /** Requests whose last entry is in Redis, and the steps run since the last status. */
  | {
      type: 'status';
      /** Requests ended, each with its timeline when it finished (a `final` event). */
      ended: [string, Outcome, EngineTimeline?][];
      steps: StepStats[];
      running: number;
      waiting: number;
    }
  | { type: 'warning'; message: string }
  | { type: 'released' };

/** Step statistics reach the main thread (for metrics) at most this often, unless a request ends sooner. */
const STATUS_INTERVAL_MS = 100;

function post(message: FromEngineThread): void {
  parentPort!.postMessage(message);
}

/** The first message: the model this thread serves. */
function nextLoad(): Promise<LoadRequest> {
  return new Promise((resolve) => {
    const onMessage = (message: ToEngineThread) => {
      if (message.type !== 'load') return;
      parentPort!.off('message', onMessage);
      resolve(message);
    };
    parentPort!.on('message', onMessage);
  });
}

async function main(): Promise<void> {
  const data = workerData as EngineThreadData;
  // What does not depend on the model happens before it is known: the thread may be a spare, started ahead.
  const { redisUrl, redisPrefix, workerId } = data.streams;
  const redis = createRedis(redisUrl, `switchyard-worker-${workerId}-streams`);
  const load = await nextLoad();
  let model: LoadedModel;
  let tier: 'page_cache' | 'cold' | 'unknown';
  try {
    tier = pageCacheTier(load.dir, load.session.dtype);
    model = await loadModel(load.dir, {
      ...load.session,
      onProgress: (message) => post({ type: 'progress', message }),
    });
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message, modelError: err instanceof ModelError });
    await redis.quit().catch(() => undefined);
    return;
  }
  /** The open requests: their cancel, and their end at the drain deadline. */
  const open = new Map<string, { controller: AbortController; abandon: (message: string) => void }>();
  // A cancel sent before the job started is found when its start entry is written, in the same command: the engine
  // drops the aborted request before it costs compute, or at the next step.
  const writer = new StreamWriter(
    redis,
    new RedisNames(redisPrefix),
    (err) => post({ type: 'warning', message: `writing a token stream failed: ${err.message}` }),
    (id) => open.get(id)?.controller.abort(),
  );
  const engine = new Engine(model, load.engine);
  let ended: [string, Outcome, EngineTimeline?][] = [];
  let steps: StepStats[] = [];
  let timer: NodeJS.Timeout | null = null;
  const sendStatus = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    post({ type: 'status', ended, steps, running: engine.running, waiting: engine.waiting });
    ended = [];
    steps = [];
  };
  engine.onStep = (stats) => {
    steps.push(stats);
    timer ??= setTimeout(sendStatus, STATUS_INTERVAL_MS);
  };
  const end = (id: string, outcome: Outcome, timeline?: EngineTimeline) => {
    open.delete(id);
    void writer.afterWrite().then(() => {
      ended.push(timeline ? [id, outcome, timeline] : [id, outcome]);
      if (ended.length === 1) queueMicrotask(sendStatus);
    });
  };

  parentPort!.on('message', (message: ToEngineThread) => {
    switch (message.type) {
      case 'submit': {
        const { request, attempt, slot, inbox } = message;
        const { id } = request;
        const controller = new AbortController();
        writer.push(id, { type: 'start', worker: workerId, attempt, at: message.startedAt }, inbox);
        let done = false;
        /** Whether a token has gone out: past that, the client may have seen part of the answer. */
        let sent = false;
        /** When the first token came out of the engine: its prefill's end, for the request's trace. */
        let firstTokenAt = 0;
        const sink = (event: EngineEvent) => {
          if (done) return;
          // cancelled while this step computed: no more tokens; the next step drops the row
          if (event.type === 'token' && slot >= 0 && Atomics.load(data.cancelFlags, slot) === 1) {
            return controller.abort();
          }
          writer.push(id, { attempt, ...event }, inbox);
          if (event.type === 'token') {
            if (!sent) firstTokenAt = Date.now();
            sent = true;
            return;
          }
          done = true;
          if (event.type !== 'final') return end(id, event.errorType);
          // the engine sends `final` as it measures `inferenceMs`: now is the request's end
          const endedAt = Date.now();
          const admittedAt = endedAt - event.inferenceMs;
          end(id, 'success', {
            submittedAt: admittedAt - event.queueMs,
            admittedAt,
            firstTokenAt: firstTokenAt || endedAt,
            endedAt,
            inputTokens: event.inputTokens,
            generatedTokens: event.details.generatedTokens,
          });
        };
        // The row's later events (the engine's own 'cancelled' among them) find `done` set and go nowhere.
        const abandon = (why: string) => {
          if (done) return;
          done = true;
          controller.abort();
          if (sent) writer.push(id, { attempt, type: 'error', errorType: 'generation', message: why }, inbox);
          end(id, sent ? SHUTDOWN : REQUEUE);
        };
        open.set(id, { controller, abandon });
        const run = () => {
          try {
            engine.submit({ ...request, signal: controller.signal }, sink);
          } catch (err) {
            const validation = (err as { errorType?: string }).errorType === 'validation';
            sink({
              type: 'error',
              errorType: validation ? 'validation' : 'generation',
              message: (err as Error).message,
            });
          }
        };
        // a grammar new to this process compiles on its own thread, not in the decode loop; `submit` then finds
        // it (or the reason it cannot serve) in the cache
        const { grammar } = request.parameters;
        if (grammar === null) run();
        else compileGrammarOffThread(grammar).then(run, run);
        break;
      }
      case 'cancel':
        open.get(message.id)?.controller.abort();
        break;
      case 'abandon':
        for (const request of [...open.values()]) request.abandon(message.message);
        break;
      case 'release':
        void engine
          .drain()
          .then(() => writer.settle())
          .then(() => redis.quit().catch(() => undefined))
          .then(() => model.release())
          .then(() => {
            sendStatus();
            post({ type: 'released' });
            parentPort!.close();
          });
        break;
    }
  });
  post({
    type: 'ready',
    loadMs: model.loadMs,
    cacheLayout: model.session.signature.layout,
    info: model.info,
    memory: model.memory,
    timings: model.timings,
    tier,
  });
}

if (parentPort) void main();
