/** The compile thread's side: builds automata and sends them back as typed arrays. */
import { parentPort } from 'node:worker_threads';
import { automatonParts, buildOutcome } from './automaton';
import { GrammarError } from './errors';
import type { CompileReply, CompileRequest } from './compile-thread';

parentPort!.on('message', ({ id, pattern }: CompileRequest) => {
  let reply: CompileReply;
  try {
    const outcome = buildOutcome(pattern);
    reply =
      outcome instanceof GrammarError ? { id, grammarError: outcome.message } : { id, parts: automatonParts(outcome) };
  } catch (err) {
    reply = { id, error: (err as Error).message ?? String(err) };
  }
  parentPort!.postMessage(reply);
});
