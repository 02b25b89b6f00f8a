/**
 * The model's tokenizer: `tokenizer.json` read by @huggingface/tokenizers, plus the facts about special tokens
 * that decoding and stopping need.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { join } from 'node:path';
import { readJsonFile } from './model-config';
import { ModelError, ModelErrorKind } from './model-error';

export class ModelTokenizer {
  /** Ids of added tokens marked special (`<|endoftext|>`, `<|im_end|>`, ...). */
  readonly specialIds: ReadonlySet<number>;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** tokenizer_config.json as read (chat template, special token strings). */
    readonly tokenizerConfig: Record<string, unknown>,
    /**
     * The most characters of text one token can stand for (the longest vocabulary entry, or added token): a text
     * longer than `n` times this cannot fit in `n` tokens, which lets a request be refused before it is tokenized.
     */
    readonly maxTokenChars = Infinity,
    /** Whether tokenizer.json has a normalizer, which may shorten a text before it is split. */
    private readonly normalized = true,
  ) {
    const special = new Set<number>();
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) {
      if (token.special) special.add(id);
    }
    this.specialIds = special;
  }

  /**
   * The longest text (in UTF-16 code units, JavaScript's `length`) that may still tokenize to at most `tokens`
   * tokens. A byte-level vocabulary entry holds one character per byte, and a text has at least as many UTF-8 bytes
   * as code units, so the bound is exact there; a normalizer may shorten a text, so it gets twice the room.
   */
  charBound(tokens: number): number {
    return tokens * this.maxTokenChars * (this.normalized ? 2 : 1);
  }

  /** Token ids for `text`. Special-token strings in the text are recognised as such, as Hugging Face does. */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], {
      skip_special_tokens: skipSpecialTokens,
      clean_up_tokenization_spaces: false,
    });
  }

  /** The vocabulary entry for one id (`Ġthe`), or undefined past the vocabulary. */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** A special token's string from tokenizer_config.json (`eos_token`, `bos_token`, ...), if it names one. */
  specialToken(name: string): string | undefined {
    const value = this.tokenizerConfig[name];
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
      return (value as { content: string }).content;
    }
    return undefined;
  }
}

/** The longest text one token of this tokenizer.json can stand for, in characters. */
export function longestToken(json: Record<string, unknown>): number {
  const model = json.model as { vocab?: unknown };
  let longest = 1;
  const consider = (piece: unknown) => {
    if (typeof piece === 'string' && piece.length > longest) longest = piece.length;
  };
  if (Array.isArray(model.vocab)) {
    for (const entry of model.vocab) consider(Array.isArray(entry) ? entry[0] : entry); // Unigram: [piece, score]
  } else if (model.vocab && typeof model.vocab === 'object') {
    for (const piece of Object.keys(model.vocab)) consider(piece);
  } else {
    return Infinity; // a model we cannot bound: never refuse on length alone
  }
  for (const added of (json.added_tokens as { content?: unknown }[] | undefined) ?? []) consider(added.content);
  return longest;
}

export function loadTokenizer(dir: string): ModelTokenizer {
  const file = join(dir, 'tokenizer.json');
  const json = readJsonFile(file, true) as Record<string, unknown>;
  const config = readJsonFile(join(dir, 'tokenizer_config.json'), false) ?? {};
  if (typeof json.model !== 'object' || json.model === null) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, 'not a Hugging Face tokenizers file (no "model" section)');
  }
  try {
    const normalized = json.normalizer !== null && json.normalizer !== undefined;
    return new ModelTokenizer(new Tokenizer(json, config), config, longestToken(json), normalized);
  } catch (err) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, `cannot build the tokenizer: ${(err as Error).message}`);
  }
}
