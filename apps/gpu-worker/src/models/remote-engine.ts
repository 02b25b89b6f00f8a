/**
 * A model's engine in its own worker thread (engine-thread.ts), driven from the worker's main thread with the
 * engine's own surface: `submit(request, sink)`, cancellation through the request's AbortSignal, `running`,
 * `waiting` and `onStep`. Loading happens in the thread; a broken model rejects `start`.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { EngineRequest, EventSink, StepStats } from '@switchyard/batching';
import { CacheLayout, ModelError, ModelErrorKind } from '@switchyard/models';
import type { EngineThreadData, FromEngineThread, ToEngineThread } from './engine-thread';

const THREAD_MAIN = join(__dirname, 'engine-thread.js');

export class RemoteEngine {
  onStep: ((stats: StepStats) => void) | null = null;
  /** Rows running and requests waiting in the thread's engine, as of its last message. */
  running = 0;
  waiting = 0;
  private readonly sinks = new Map<string, EventSink>();
  private released: (() => void) | null = null;
  private failure: Error | null = null;

  private constructor(
    private readonly thread: Worker,
    readonly loadMs: number,
    readonly cacheLayout: CacheLayout,
    readonly fusionSkipped: string | null,
  ) {
    thread.on('message', (message: FromEngineThread) => this.receive(message));
    thread.on('error', (err) => this.fail(err));
    thread.on('exit', (code) => {
      if (!this.released) this.fail(new Error(`the engine thread exited (${code})`));
      this.released?.();
    });
  }

  /** Loads the model in a new thread; resolves once its engine is ready. */
  static start(data: EngineThreadData): Promise<RemoteEngine> {
    return new Promise((resolve, reject) => {
      const thread = new Worker(THREAD_MAIN, { workerData: data });
      const onMessage = (message: FromEngineThread) => {
        if (message.type === 'ready') {
          cleanup();
          resolve(
            new RemoteEngine(thread, message.loadMs, message.cacheLayout, message.fusionSkipped),
          );
        } else if (message.type === 'failed') {
          cleanup();
          void thread.terminate();
          reject(
            message.modelError
              ? new ModelError(ModelErrorKind.SessionFailed, data.dir, message.message)
              : new Error(message.message),
          );
        }
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const cleanup = () => {
        thread.off('message', onMessage);
        thread.off('error', onError);
      };
      thread.on('message', onMessage);
      thread.on('error', onError);
    });
  }

  /** Rows running plus requests submitted and not yet ended. */
  get pending(): number {
    return this.sinks.size;
  }

  submit(request: EngineRequest, sink: EventSink): void {
    if (this.failure) throw this.failure;
    const { signal, ...rest } = request;
    this.sinks.set(request.id, sink);
    this.send({ type: 'submit', request: rest });
    if (signal?.aborted) this.send({ type: 'cancel', id: request.id });
    else signal?.addEventListener('abort', () => this.send({ type: 'cancel', id: request.id }), { once: true });
  }

  /** Finishes what runs, releases the ONNX session and ends the thread. */
  release(): Promise<void> {
    if (this.failure) return this.thread.terminate().then(() => undefined);
    return new Promise((resolve) => {
      this.released = resolve;
      this.send({ type: 'release' });
    });
  }

  private send(message: ToEngineThread): void {
    this.thread.postMessage(message);
  }

  private receive(message: FromEngineThread): void {
    switch (message.type) {
      case 'events':
        this.running = message.running;
        this.waiting = message.waiting;
        if (this.onStep) for (const step of message.steps) this.onStep(step);
        for (const [id, event] of message.events) {
          const sink = this.sinks.get(id);
          if (!sink) continue;
          if (event.type !== 'token') this.sinks.delete(id);
          sink(event);
        }
        break;
      case 'released':
        break; // the exit event follows
    }
  }

  /** The thread died: every open request ends with a generation error. */
  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const [, sink] of this.sinks) sink({ type: 'error', errorType: 'generation', message: err.message });
    this.sinks.clear();
  }
}
