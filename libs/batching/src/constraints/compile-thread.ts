/**
 * Compiles grammars on a worker thread. Building the automaton of a large schema takes a few hundred
 * milliseconds (refa's subset construction and minimisation over Unicode ranges), which must not hold the API's
 * event loop or a worker's decode loop: callers await `compileGrammarOffThread` first, and the synchronous
 * `compileGrammar` then finds the outcome in the process's cache. One thread per process, started at the first
 * grammar, holding the process open only while a compile is under way.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Automaton, automatonFromParts, AutomatonParts, knownGrammar, rememberGrammar } from './automaton';
import { GrammarError } from './errors';

export interface CompileRequest {
  id: number;
  pattern: string;
}
export type CompileReply =
  { id: number; parts: AutomatonParts } | { id: number; grammarError: string } | { id: number; error: string };

let worker: Worker | null = null;
let nextId = 0;
const pending = new Map<number, { pattern: string; resolve: (a: Automaton) => void; reject: (e: Error) => void }>();

function thread(): Worker {
  if (worker) return worker;
  const started = new Worker(join(__dirname, 'compile-thread.main.js'));
  started.on('message', (reply: CompileReply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (pending.size === 0) started.unref(); // idle: the thread does not hold the process open
    if ('parts' in reply) {
      const automaton = automatonFromParts(reply.parts);
      rememberGrammar(waiting.pattern, automaton);
      waiting.resolve(automaton);
    } else if ('grammarError' in reply) {
      const error = new GrammarError(reply.grammarError);
      rememberGrammar(waiting.pattern, error);
      waiting.reject(error);
    } else {
      waiting.reject(new Error(`the grammar compiler failed: ${reply.error}`));
    }
  });
  const fail = (err: Error) => {
    if (worker === started) worker = null;
    for (const [, waiting] of pending) waiting.reject(err);
    pending.clear();
  };
  started.on('error', fail);
  started.on('exit', (code) => fail(new Error(`the grammar compile thread exited (${code})`)));
  // after the listeners: adding a 'message' listener refs the thread's port again
  started.unref();
  worker = started;
  return started;
}

/** The grammar's automaton, compiled on the compile thread unless this process knows it; rejects with
 * GrammarError when it cannot serve. */
export function compileGrammarOffThread(pattern: string): Promise<Automaton> {
  const known = knownGrammar(pattern);
  if (known instanceof GrammarError) return Promise.reject(known);
  if (known !== undefined) return Promise.resolve(known);
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { pattern, resolve, reject });
    const compiler = thread();
    compiler.ref(); // a compile under way keeps the process until it answers
    compiler.postMessage({ id, pattern } satisfies CompileRequest);
  });
}
