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
  ) {
    const special = new Set<number>();
    for (const [id, token] of tokenizer.get_added_tokens_decoder()) {
      if (token.special) special.add(id);
    }
    this.specialIds = special;
  }

  /** Token ids for `text`. Special-token strings in the text are recognised as such, as Hugging Face does. */
  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: readonly number[], skipSpecialTokens = false): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: skipSpecialTokens, clean_up_tokenization_spaces: false });
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

export function loadTokenizer(dir: string): ModelTokenizer {
  const file = join(dir, 'tokenizer.json');
  const json = readJsonFile(file, true) as Record<string, unknown>;
  const config = readJsonFile(join(dir, 'tokenizer_config.json'), false) ?? {};
  if (typeof json.model !== 'object' || json.model === null) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, 'not a Hugging Face tokenizers file (no "model" section)');
  }
  try {
    return new ModelTokenizer(new Tokenizer(json, config), config);
  } catch (err) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, `cannot build the tokenizer: ${(err as Error).message}`);
  }
}
