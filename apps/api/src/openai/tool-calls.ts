/**
 * Tool calls on /v1/chat/completions: the conversation as the chat template takes it (the tools, earlier calls and
 * their results), and the model's constrained answer read back as OpenAI's `tool_calls`, whole or as it streams.
 * The answer's form is the grammar's (openai-grammar.ts): compact JSON, `{"name":"f","arguments":{...}}` or an
 * array of such objects.
 */
import { randomBytes } from 'node:crypto';
import type { ChatMessage as TemplateMessage, ChatTemplate } from '@switchyard/models';
import type { ToolUse } from './openai-grammar';
import type { ChatMessage, FunctionTool, ToolCall } from './openai.schemas';

const ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `call_` and 24 random letters and digits, as OpenAI's ids look. */
export function toolCallId(): string {
  return `call_${Array.from(randomBytes(24), (b) => ID_ALPHABET[b % ID_ALPHABET.length]).join('')}`;
}

/** The system preamble that shows the tools to a model whose template does not read `tools`. */
export function toolPreamble(tools: readonly FunctionTool[]): string {
  const listed = tools.map((t) =>
    JSON.stringify({
      name: t.function.name,
      ...(t.function.description ? { description: t.function.description } : {}),
      parameters: t.function.parameters ?? { type: 'object', properties: {} },
    }),
  );
  return (
    `You can call these tools:\n${listed.join('\n')}\n` +
    'To call a tool, answer only with JSON {"name": <tool name>, "arguments": <arguments object>} ' +
    '(or a JSON array of such objects for several calls).'
  );
}

/** An earlier answer's calls as the model writes them: one call object, or an array of several. */
function callsAsText(calls: readonly ToolCall[]): string {
  const objects = calls.map((c) => `{"name":${JSON.stringify(c.function.name)},"arguments":${c.function.arguments}}`);
  return objects.length === 1 ? objects[0] : `[${objects.join(',')}]`;
}

/** A call's arguments as an object, for templates that format them themselves; the text when it is not JSON. */
function parsedArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The conversation for the template. Templates that know tool calls (their source mentions `tool_calls`) get an
 * assistant's calls as HF's templates read them; others get the calls' JSON as the assistant's text. `tool`
 * messages go as they are. Without a template that reads `tools`, the tools go in a preamble merged into the first
 * system message (or a new one).
 */
export function templateMessages(
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  use: ToolUse | null,
): { messages: TemplateMessage[]; extra: Record<string, unknown> } {
  const knowsCalls = template.source.includes('tool_calls');
  const out: TemplateMessage[] = messages.map((m) => {
    const role = m.role === 'developer' ? 'system' : m.role;
    const text = m.content ?? '';
    if (m.role === 'assistant' && m.tool_calls?.length) {
      if (!knowsCalls)
        return { role, content: text === '' ? callsAsText(m.tool_calls) : `${text}\n${callsAsText(m.tool_calls)}` };
      return {
        role,
        content: text,
        tool_calls: m.tool_calls.map((c) => ({
          id: c.id,
          type: 'function',
          function: { name: c.function.name, arguments: parsedArguments(c.function.arguments) },
        })),
      };
    }
    if (m.role === 'tool') return { role, content: text, tool_call_id: m.tool_call_id };
    return { role, content: text };
  });
  if (!use) return { messages: out, extra: {} };
  if (template.source.includes('tools')) return { messages: out, extra: { tools: use.shown } };
  const preamble = toolPreamble(use.shown);
  if (out[0]?.role === 'system') out[0] = { ...out[0], content: `${out[0].content}\n\n${preamble}` };
  else out.unshift({ role: 'system', content: preamble });
  return { messages: out, extra: {} };
}

/** What one piece of a choice's text adds to its answer: text, and deltas of its tool calls. */
export interface ChoiceDelta {
  content: string;
  toolCalls: ToolCallDelta[];
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function: { name?: string; arguments: string };
}

const CALL_OPEN = '{"name":';
const ARGUMENTS_KEY = ',"arguments":';

type State =
  | 'undecided' // nothing seen yet: text or calls?
  | 'text'
  | 'open' // before a call object (or the array's first)
  | 'prefix' // inside `{"name":`
  | 'name' // inside the name's JSON string
  | 'key' // inside `,"arguments":`
  | 'arguments'
  | 'close' // the call object's `}`
  | 'after' // after a call: `,` or `]` in an array
  | 'done'
  | 'invalid';

/**
 * Reads a choice's constrained answer as it comes, character by character: whether it is text or tool calls, where
 * each call's name ends and where its arguments start and end (tracking strings, escapes and nesting), so that
 * argument text can go out as it arrives. Without tools (`calls: false`) it passes the text through.
 */
export class ToolCallSplitter {
  private state: State;
  private array = false;
  private index = -1;
  private literal = 0;
  private raw = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The calls read so far: name and arguments text. */
  readonly calls: ToolCall[] = [];

  constructor(calls: boolean) {
    this.state = calls ? 'undecided' : 'text';
  }

  /** Whether the answer is tool calls, read to their end. */
  get complete(): boolean {
    return this.state === 'done';
  }

  /** Whether the answer is (or started as) tool calls rather than text. */
  get isCalls(): boolean {
    return this.state !== 'text' && this.state !== 'undecided';
  }

  push(text: string): ChoiceDelta {
    const delta: ChoiceDelta = { content: '', toolCalls: [] };
    if (this.state === 'text') {
      delta.content = text;
      return delta;
    }
    for (let i = 0; i < text.length; i++) {
      if (this.state === 'undecided') {
        if (text[i] !== '{' && text[i] !== '[') {
          this.state = 'text';
          delta.content = text.slice(i);
          return delta;
        }
        this.state = 'open';
      }
      this.step(text[i], delta);
    }
    return delta;
  }

  private argumentsDelta(delta: ChoiceDelta, ch: string) {
    const last = delta.toolCalls.at(-1);
    if (last && last.index === this.index && last.id === undefined) last.function.arguments += ch;
    else delta.toolCalls.push({ index: this.index, function: { arguments: ch } });
    this.calls[this.index].function.arguments += ch;
  }

  private step(ch: string, delta: ChoiceDelta): void {
    switch (this.state) {
      case 'open':
        if (ch === '[' && !this.array && this.index < 0) {
          this.array = true;
          return;
        }
        this.state = 'prefix';
        this.literal = 0;
        this.step(ch, delta);
        return;
      case 'prefix':
        if (ch !== CALL_OPEN[this.literal]) return void (this.state = 'invalid');
        if (++this.literal === CALL_OPEN.length) {
          this.state = 'name';
          this.raw = '';
          this.escaped = false;
        }
        return;
      case 'name': {
        this.raw += ch;
        if (this.raw.length === 1) {
          if (ch !== '"') this.state = 'invalid';
          return;
        }
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') {
          this.index++;
          const call: ToolCall = {
            id: toolCallId(),
            type: 'function',
            function: { name: JSON.parse(this.raw) as string, arguments: '' },
          };
          this.calls.push(call);
          delta.toolCalls.push({
            index: this.index,
            id: call.id,
            type: 'function',
            function: { name: call.function.name, arguments: '' },
          });
          this.state = 'key';
          this.literal = 0;
        }
        return;
      }
      case 'key':
        if (ch !== ARGUMENTS_KEY[this.literal]) return void (this.state = 'invalid');
        if (++this.literal === ARGUMENTS_KEY.length) {
          this.state = 'arguments';
          this.depth = 0;
          this.inString = false;
          this.escaped = false;
        }
        return;
      case 'arguments':
        if (!this.inString && this.depth === 0 && ch === '}') {
          // a scalar's end: the call object closes
          this.state = this.array ? 'after' : 'done';
          return;
        }
        this.argumentsDelta(delta, ch);
        if (this.inString) {
          if (this.escaped) this.escaped = false;
          else if (ch === '\\') this.escaped = true;
          else if (ch === '"') this.inString = false;
        } else if (ch === '"') this.inString = true;
        else if (ch === '{' || ch === '[') this.depth++;
        else if ((ch === '}' || ch === ']') && --this.depth === 0) this.state = 'close';
        return;
      case 'close':
        this.state = ch === '}' ? (this.array ? 'after' : 'done') : 'invalid';
        return;
      case 'after':
        if (!this.array) this.state = 'invalid';
        else if (ch === ',') this.state = 'open';
        else this.state = ch === ']' ? 'done' : 'invalid';
        return;
      default:
        this.state = 'invalid';
    }
  }
}

/** A whole answer read back: its tool calls when it is complete calls, else null (text, or calls cut short). */
export function parseToolCalls(text: string): ToolCall[] | null {
  const splitter = new ToolCallSplitter(true);
  splitter.push(text);
  return splitter.complete ? splitter.calls : null;
}
