/**
 * A model's engine in its own worker thread (engine-thread.ts), driven from the worker's main thread. The thread
 * writes each request's token stream to Redis itself; this side submits requests, cancels them through their
 * AbortSignal, and learns when each ended, once its last entry is written. `running`, `waiting` and `onStep`
 * follow the thread's status messages. Loading happens in the thread; a broken model rejects `start`.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';
import type { EngineRequest, ErrorEvent, StepStats } from '@switchyard/batching';
import { CacheLayout, MemoryEstimate, ModelError, ModelErrorKind, ModelInfo } from '@switchyard/models';
import type {
  EngineThreadData,
  EngineTimeline,
  FromEngineThread,
  LoadRequest,
  Outcome,
  ToEngineThread,
} from './engine-thread';

const THREAD_MAIN = join(__dirname, 'engine-thread.js');

/** Cancel flags shared with the thread: one per request in flight (more than a batch ever holds). */
const CANCEL_SLOTS = 4096;

interface Spare {
  /** The streams configuration it was started with. */
  key: string;
  thread: Worker;
  cancelFlags: Int32Array;
}

/** The thread started ahead of the next load (one per process: loads are rare next to requests). */
let spare: Spare | null = null;

/**
 * Called once per request: with its outcome once the thread wrote its last entry, or with an error that nobody
 * wrote (the thread died), which the caller must write itself.
 */
/** A request's end: how, the error entry left for the caller to write, and a finished request's timeline. */
export type EndHandler = (outcome: Outcome, unwritten?: ErrorEvent, timeline?: EngineTimeline) => void;

export class RemoteEngine {
  onStep: ((stats: StepStats) => void) | null = null;
  /** Rows running and requests waiting in the thread's engine, as of its last status. */
  running = 0;
  waiting = 0;
  private readonly ends = new Map<string, { onEnd: EndHandler; slot: number }>();
  private readonly freeSlots = Array.from({ length: CANCEL_SLOTS }, (_, i) => CANCEL_SLOTS - 1 - i);
  private readonly logger: Logger;
  private released: (() => void) | null = null;
  private failure: Error | null = null;
  /** Called once no request is open (the thread has reported every end), while `abandon` waits for that. */
  private emptied: (() => void) | null = null;

  private constructor(
    private readonly thread: Worker,
    private readonly cancelFlags: Int32Array,
    readonly loadMs: number,
    readonly cacheLayout: CacheLayout,
    /** What was loaded: precision, quantization, attention path. */
    readonly info: ModelInfo,
    /** The loaded model's own memory estimate. */
    readonly memory: MemoryEstimate,
    /** Milliseconds per step of the load. */
    readonly timings: Record<string, number>,
    /** Whether the model's weights were in the page cache when its load began. */
    readonly tier: 'page_cache' | 'cold' | 'unknown',
    dir: string,
  ) {
    this.logger = new Logger(`Engine ${dir}`);
    thread.on('message', (message: FromEngineThread) => this.receive(message));
    thread.on('error', (err) => this.fail(err));
    thread.on('exit', (code) => {
      // requests still open (a release cut short) end here, written by the caller
      if (!this.released || this.ends.size > 0) this.fail(new Error(`the engine thread exited (${code})`));
      this.released?.();
    });
  }

  /**
   * Starts a thread ahead of the next load, with its modules loaded and its connection open: a load then pays only
   * for the model itself (the thread's start took about 150 ms of a demo model's 300 ms swap). Idempotent.
   */
  static prepareSpare(streams: EngineThreadData['streams']): void {
    const key = JSON.stringify(streams);
    if (spare?.key === key) return;
    void spare?.thread.terminate();
    const cancelFlags = new Int32Array(new SharedArrayBuffer(CANCEL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
    const thread = new Worker(THREAD_MAIN, { workerData: { streams, cancelFlags } satisfies EngineThreadData });
    // a spare does not keep the process alive
    thread.unref();
    const entry: Spare = { key, thread, cancelFlags };
    const drop = () => {
      if (spare === entry) spare = null;
    };
    thread.once('error', drop);
    thread.once('exit', drop);
    spare = entry;
  }

  /** Ends the spare thread, if there is one (at shutdown). */
  static async disposeSpare(): Promise<void> {
    const entry = spare;
    spare = null;
    await entry?.thread.terminate();
  }

  /** Loads the model in the spare thread (or a new one); resolves once its engine is ready. */
  static start(
    streams: EngineThreadData['streams'],
    load: LoadRequest,
    onProgress?: (message: string) => void,
  ): Promise<RemoteEngine> {
    const key = JSON.stringify(streams);
    let started = spare?.key === key ? spare : null;
    if (started) spare = null;
    else {
      const cancelFlags = new Int32Array(new SharedArrayBuffer(CANCEL_SLOTS * Int32Array.BYTES_PER_ELEMENT));
      started = {
        key,
        cancelFlags,
        thread: new Worker(THREAD_MAIN, { workerData: { streams, cancelFlags } satisfies EngineThreadData }),
      };
    }
    const { thread, cancelFlags } = started;
    thread.removeAllListeners('error');
    thread.removeAllListeners('exit');
    thread.ref();
    return new Promise((resolve, reject) => {
      const onMessage = (message: FromEngineThread) => {
        if (message.type === 'progress') onProgress?.(message.message);
        else if (message.type === 'ready') {
          cleanup();
          const { loadMs, cacheLayout, info, memory, timings, tier } = message;
          resolve(new RemoteEngine(thread, cancelFlags, loadMs, cacheLayout, info, memory, timings, tier, load.dir));
        } else if (message.type === 'failed') {
          cleanup();
          void thread.terminate();
          reject(
            message.modelError
              ? new ModelError(ModelErrorKind.SessionFailed, load.dir, message.message)
              : new Error(message.message),
          );
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`the engine thread exited (${code}) while loading ${load.dir}`));
      };
      const cleanup = () => {
        thread.off('message', onMessage);
        thread.off('error', onError);
        thread.off('exit', onExit);
      };
      thread.on('message', onMessage);
      thread.on('error', onError);
      thread.on('exit', onExit);
      thread.postMessage({ type: 'load', ...load } satisfies ToEngineThread);
    });
  }

  /** Requests submitted and not yet ended. */
  get pending(): number {
    return this.ends.size;
  }

  /**
   * Submits a request whose events carry `attempt` and go to `inbox` (the following API's, or null for the
   * request's own stream); the thread writes its `start` entry first. Throws if the thread has died. An abort sets
   * the request's shared cancel flag, which the thread reads before it writes each token, so no token is written
   * after it even while a step computes; the message that follows makes the engine drop the row (or the waiting
   * request) at its next step.
   */
  submit(
    request: EngineRequest,
    stream: { attempt: number; startedAt: number; inbox: string | null },
    onEnd: EndHandler,
  ): void {
    if (this.failure) throw this.failure;
    const { signal, ...rest } = request;
    const slot = this.freeSlots.pop() ?? -1;
    if (slot >= 0) Atomics.store(this.cancelFlags, slot, 0);
    this.ends.set(request.id, { onEnd, slot });
    this.send({ type: 'submit', request: rest, ...stream, slot });
    const cancel = () => {
      if (slot >= 0) Atomics.store(this.cancelFlags, slot, 1);
      this.send({ type: 'cancel', id: request.id });
    };
    if (signal?.aborted) cancel();
    else signal?.addEventListener('abort', cancel, { once: true });
  }

  /**
   * The drain deadline: the thread ends every open request at once, with an error entry carrying `message` if it
   * has written a token, or withdrawn (outcome `REQUEUE`) if not. Resolves once every end has come back here.
   */
  abandon(message: string): Promise<void> {
    if (this.ends.size === 0 || this.failure) return Promise.resolve();
    const emptied = new Promise<void>((resolve) => (this.emptied = resolve));
    this.send({ type: 'abandon', message });
    return emptied;
  }

  /**
   * Finishes what runs, writes its last entries, releases the ONNX session and ends the thread. Past `timeoutMs`
   * (at shutdown, once the requests were abandoned: a step that will not end) the thread is terminated instead.
   */
  release(timeoutMs = Infinity): Promise<void> {
    if (this.failure) return this.thread.terminate().then(() => undefined);
    const released = new Promise<void>((resolve) => {
      this.released = resolve;
      this.send({ type: 'release' });
    });
    if (!Number.isFinite(timeoutMs)) return released;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.logger.warn(`the engine thread did not stop within ${timeoutMs} ms of its release: terminating it`);
        resolve(this.thread.terminate().then(() => undefined));
      }, timeoutMs);
    });
    return Promise.race([released, late]).finally(() => clearTimeout(timer));
  }

  private send(message: ToEngineThread): void {
    this.thread.postMessage(message);
  }

  private receive(message: FromEngineThread): void {
    switch (message.type) {
      case 'status':
        this.running = message.running;
        this.waiting = message.waiting;
        if (this.onStep) for (const step of message.steps) this.onStep(step);
        for (const [id, outcome, timeline] of message.ended) {
          const entry = this.ends.get(id);
          if (!entry) continue;
          this.ends.delete(id);
          if (entry.slot >= 0) this.freeSlots.push(entry.slot);
          entry.onEnd(outcome, undefined, timeline);
        }
        if (this.ends.size === 0) this.emptied?.();
        break;
      case 'warning':
        this.logger.error(message.message);
        break;
      case 'released':
        break; // the exit event follows
    }
  }

  /** The thread died: every open request ends with a generation error, for the caller to write. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    const event: ErrorEvent = { type: 'error', errorType: 'generation', message: err.message };
    for (const [, { onEnd }] of this.ends) onEnd('generation', event);
    this.ends.clear();
    this.emptied?.();
  }
}
