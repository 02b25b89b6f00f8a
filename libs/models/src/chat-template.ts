/**
 * The model's chat template (Jinja, from tokenizer_config.json), rendered with @huggingface/jinja as
 * transformers' `apply_chat_template` does.
 */
import { Template } from '@huggingface/jinja';
import { ModelError, ModelErrorKind } from './model-error';
import type { ModelTokenizer } from './tokenizer';

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatRenderOptions {
  addGenerationPrompt?: boolean;
  /** Extra variables some templates read (`tools`, `documents`, ...). */
  extra?: Record<string, unknown>;
}

/** Raised when the template refuses the conversation (`raise_exception(...)`) or fails to render. */
export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    private readonly specialTokens: Record<string, string | undefined>,
  ) {
    this.template = new Template(source);
  }

  render(messages: ChatMessage[], options: ChatRenderOptions = {}): string {
    try {
      return this.template.render({
        ...options.extra,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        ...this.specialTokens,
      });
    } catch (err) {
      // @huggingface/jinja provides raise_exception itself; a template's refusal arrives here as an Error.
      throw new ChatTemplateError(`chat template failed to render: ${(err as Error).message}`);
    }
  }
}

/** The template named `default` (or the only one) from tokenizer_config.json, or null when the model has none. */
export function loadChatTemplate(tokenizer: ModelTokenizer, file: string): ChatTemplate | null {
  const raw = tokenizer.tokenizerConfig.chat_template;
  let source: string | undefined;
  if (typeof raw === 'string') {
    source = raw;
  } else if (Array.isArray(raw)) {
    const named = raw as { name?: unknown; template?: unknown }[];
    const entry = named.find((t) => t.name === 'default') ?? (named.length === 1 ? named[0] : undefined);
    if (typeof entry?.template === 'string') source = entry.template;
  }
  if (source === undefined) return null;
  const specialTokens: Record<string, string | undefined> = {};
  for (const name of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    specialTokens[name] = tokenizer.specialToken(name) ?? '';
  }
  try {
    return new ChatTemplate(source, specialTokens);
  } catch (err) {
    throw new ModelError(ModelErrorKind.InvalidFile, file, `chat_template does not parse: ${(err as Error).message}`);
  }
}
