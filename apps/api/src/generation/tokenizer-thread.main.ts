/**
 * The tokenizer thread's body (see tokenizer-thread.ts): loads each model directory's tokenizer once and encodes
 * the texts it is sent, answering with the ids in a transferred buffer.
 */
import { parentPort } from 'node:worker_threads';
import { loadTokenizer, ModelTokenizer } from '@switchyard/models';

export interface EncodeRequest {
  id: number;
  dir: string;
  text: string;
}

export type EncodeReply = { id: number; ids: Int32Array } | { id: number; error: string };

const tokenizers = new Map<string, ModelTokenizer>();

parentPort!.on('message', ({ id, dir, text }: EncodeRequest) => {
  try {
    let tokenizer = tokenizers.get(dir);
    if (!tokenizer) {
      tokenizer = loadTokenizer(dir);
      tokenizers.set(dir, tokenizer);
    }
    const ids = Int32Array.from(tokenizer.encode(text));
    parentPort!.postMessage({ id, ids } satisfies EncodeReply, [ids.buffer]);
  } catch (err) {
    parentPort!.postMessage({ id, error: (err as Error).message } satisfies EncodeReply);
  }
});
