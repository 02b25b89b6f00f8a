/**
 * A /v1 answer as server-sent chunks, for one or several choices generated side by side: each choice opens with
 * its role chunk (chat) or its echoed prompt (completions), streams its tokens (text, or tool-call deltas read by
 * its ToolCallSplitter) under its own index, and ends with its own finish-reason chunk; then the usage chunk when
 * asked for, and `data: [DONE]`. Only the chunks' shape lives here; the controller runs the generations.
 */
import type { FinalEvent, TokenEvent } from '@switchyard/batching';
import type { Kind } from './openai-answer';
import { choiceLogprobs, openAiFinishReason, sse, usage } from './openai-params';
import { ToolCallSplitter } from './tool-calls';

export interface ChunkStreamOptions {
  kind: Kind;
  id: string;
  created: number;
  fingerprint: string;
  choices: number;
  logprobs: number | null;
  /** Whether a choice's text is read for tool calls. */
  toolCalls: boolean;
  withUsage: boolean;
}

export class ChunkStream {
  private model = '';
  private readonly splitters: ToolCallSplitter[];
  private readonly offsets: number[];

  constructor(private readonly opts: ChunkStreamOptions) {
    this.splitters = Array.from({ length: opts.choices }, () => new ToolCallSplitter(opts.toolCalls));
    this.offsets = new Array<number>(opts.choices).fill(0);
  }

  private chunk(choices: unknown[], extra: Record<string, unknown> = {}): string {
    const { kind, id, created, fingerprint, withUsage } = this.opts;
    return sse({
      id,
      object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion',
      created,
      model: this.model,
      system_fingerprint: fingerprint,
      choices,
      ...(withUsage ? { usage: null } : {}),
      ...extra,
    });
  }

  /** The chunks that open the stream: every choice's role (chat), or its echoed prompt (completions). */
  open(model: string, echoed: string | null): string {
    this.model = model;
    const indices = [...Array(this.opts.choices).keys()];
    if (this.opts.kind === 'chat') {
      return indices
        .map((index) =>
          this.chunk([{ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]),
        )
        .join('');
    }
    if (echoed === null) return '';
    return indices.map((index) => this.chunk([{ index, text: echoed, logprobs: null, finish_reason: null }])).join('');
  }

  /** A token's chunk for choice `index`, or '' when it adds nothing to show (a special token, a call's syntax). */
  token(index: number, event: TokenEvent): string {
    if (event.token.special) return '';
    let logprobs: unknown = null;
    if (this.opts.logprobs !== null) {
      logprobs = choiceLogprobs(this.opts.kind, [event.token], [event.topTokens], this.offsets[index]);
      this.offsets[index] += event.token.text.length;
    }
    if (this.opts.kind === 'completion') {
      return this.chunk([{ index, text: event.token.text, logprobs, finish_reason: null }]);
    }
    const splitter = this.splitters[index];
    const { content, toolCalls } = splitter.push(event.token.text);
    if (toolCalls.length > 0) {
      return this.chunk([{ index, delta: { tool_calls: toolCalls }, logprobs, finish_reason: null }]);
    }
    if (content === '' && splitter.isCalls && logprobs === null) return '';
    return this.chunk([{ index, delta: { content }, logprobs, finish_reason: null }]);
  }

  /** Choice `index`'s last token, if the generation held it back, and its finish-reason chunk. */
  finish(index: number, final: FinalEvent, lastToken: TokenEvent | undefined): string {
    const last = lastToken ? this.token(index, lastToken) : '';
    const splitter = this.splitters[index];
    const reason =
      this.opts.kind === 'chat' && splitter.complete ? 'tool_calls' : openAiFinishReason(final.details.finishReason);
    const end =
      this.opts.kind === 'chat'
        ? { index, delta: {}, logprobs: null, finish_reason: reason }
        : { index, text: '', logprobs: null, finish_reason: reason };
    return last + this.chunk([end]);
  }

  /** The closing chunks: the usage (prompt once, every choice's tokens), when asked for, and `[DONE]`. */
  close(promptTokens: number, completionTokens: number): string {
    const tail = this.opts.withUsage ? this.chunk([], { usage: usage(promptTokens, completionTokens) }) : '';
    return `${tail}data: [DONE]\n\n`;
  }
}
