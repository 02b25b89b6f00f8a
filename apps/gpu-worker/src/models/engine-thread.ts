/**
 * The thread side of `RemoteEngine`: a worker thread that loads one model and runs its engine. onnxruntime-node
 * runs `session.run` on the calling thread, so the engine lives here and the worker's main thread stays free for
 * Redis, BullMQ locks and job fetching while a step computes. Events of one step go back in one message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Engine, EngineConfig, EngineEvent, EngineRequest, StepStats } from '@switchyard/batching';
import { CacheLayout, loadModel, LoadedModel, ModelError, SessionOptions } from '@switchyard/models';

export interface EngineThreadData {
  dir: string;
  session: Partial<SessionOptions>;
  engine: Partial<EngineConfig>;
}

/** Main thread → engine thread. */
export type ToEngineThread =
  | { type: 'submit'; request: Omit<EngineRequest, 'signal'> }
  | { type: 'cancel'; id: string }
  | { type: 'release' };

/** Engine thread → main thread. */
export type FromEngineThread =
  | {
      type: 'ready';
      loadMs: number;
      cacheLayout: CacheLayout;
      fusionSkipped: string | null;
    }
  | { type: 'failed'; message: string; modelError: boolean }
  | { type: 'events'; events: [string, EngineEvent][]; steps: StepStats[]; running: number; waiting: number }
  | { type: 'released' };

function post(message: FromEngineThread): void {
  parentPort!.postMessage(message);
}

async function main(): Promise<void> {
  const data = workerData as EngineThreadData;
  let model: LoadedModel;
  try {
    model = await loadModel(data.dir, data.session);
  } catch (err) {
    post({ type: 'failed', message: (err as Error).message, modelError: err instanceof ModelError });
    return;
  }
  const engine = new Engine(model, data.engine);
  const controllers = new Map<string, AbortController>();
  let events: [string, EngineEvent][] = [];
  let steps: StepStats[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    post({ type: 'events', events, steps, running: engine.running, waiting: engine.waiting });
    events = [];
    steps = [];
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(flush);
  };
  engine.onStep = (stats) => {
    steps.push(stats);
    schedule();
  };

  parentPort!.on('message', (message: ToEngineThread) => {
    switch (message.type) {
      case 'submit': {
        const controller = new AbortController();
        const { id } = message.request;
        controllers.set(id, controller);
        const sink = (event: EngineEvent) => {
          events.push([id, event]);
          if (event.type !== 'token') controllers.delete(id);
          schedule();
        };
        try {
          engine.submit({ ...message.request, signal: controller.signal }, sink);
        } catch (err) {
          const validation = (err as { errorType?: string }).errorType === 'validation';
          sink({ type: 'error', errorType: validation ? 'validation' : 'generation', message: (err as Error).message });
        }
        break;
      }
      case 'cancel':
        controllers.get(message.id)?.abort();
        break;
      case 'release':
        void engine
          .drain()
          .then(() => model.release())
          .then(() => {
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
    fusionSkipped: model.session.fusionSkipped,
  });
}

if (parentPort) void main();
