/**
 * Tokenizes long prompts off the API's event loop. Encoding runs at about a thousand characters a millisecond, so
 * a prompt of 100,000 characters would hold every other request (and `/health`) for a tenth of a second; texts
 * of `OFF_LOOP_CHARS` or more go to one worker thread instead, and short ones, the common case, stay inline where
 * a message round trip would cost more than the encoding. The thread starts at the first long prompt, keeps each
 * model's tokenizer, and does not hold the process open.
 */
import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelTokenizer } from '@switchyard/models';
import type { EncodeReply, EncodeRequest } from './tokenizer-thread.main';

/** Texts this long or longer are encoded on the thread (about 15 ms of encoding inline). */
export const OFF_LOOP_CHARS = 16_384;

@Injectable()
export class TokenizerThread implements OnModuleDestroy {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (ids: number[]) => void; reject: (err: Error) => void }>();

  /** The text's token ids (special tokens added), from `tokenizer` inline or from the thread for a long text. */
  encode(dir: string, tokenizer: ModelTokenizer, text: string): number[] | Promise<number[]> {
    if (text.length < OFF_LOOP_CHARS) return tokenizer.encode(text);
    return new Promise<number[]>((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.thread().postMessage({ id, dir, text } satisfies EncodeRequest);
    });
  }

  onModuleDestroy(): void {
    void this.worker?.terminate();
    this.worker = null;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(join(__dirname, 'tokenizer-thread.main.js'));
    worker.unref();
    worker.on('message', (reply: EncodeReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(Array.from(reply.ids));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = null;
      for (const [, waiting] of this.pending) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the tokenizer thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
