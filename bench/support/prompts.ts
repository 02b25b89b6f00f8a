/**
 * Prompts of a chosen token length, cut from text in the demo models' own domains (their golden prompts and
 * continuations: scripture, fortunes, the Jargon File, dictionary glosses), so the models see familiar text.
 */
import type { ModelTokenizer } from '@switchyard/models';
import { Rng } from '@switchyard/batching';
import { loadGoldens } from '../../test/support/repo';

export class PromptSource {
  private readonly corpus: number[];

  constructor(tokenizer: ModelTokenizer, model = 'demo-small') {
    const text = loadGoldens(model)
      .cases.filter((c) => !c.prompt.startsWith('<|im_start|>'))
      .map((c) => c.prompt + c.greedy_text.replace(/<\|[a-z_]+\|>/g, ''))
      .join('\n');
    const ids = tokenizer.encode(text);
    this.corpus = [];
    while (this.corpus.length < 4096) this.corpus.push(...ids);
  }

  /** `length` consecutive corpus tokens from a random offset. */
  take(rng: Rng, length: number): number[] {
    const start = Math.floor(rng.next() * (this.corpus.length - length));
    return this.corpus.slice(start, start + length);
  }
}
