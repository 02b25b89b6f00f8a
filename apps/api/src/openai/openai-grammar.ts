/**
 * What constrains a /v1 request's decoding, as the engine's regex: chat's `response_format` and tool calls, the
 * completions' TGI `grammar`. A grammar the engine cannot take is a 422 naming the field it came from.
 */
import { escapeRegex, GrammarError, jsonObjectRegex, jsonSchemaRegex, MAX_GRAMMAR_LENGTH } from '@switchyard/batching';
import { ApiError } from '../common/api-error';
import { compileOrRefuse, grammarPattern } from '../common/grammar';
import type { ChatCompletionRequest, CompletionRequest, FunctionTool } from './openai.schemas';

/** The most calls one answer may make with `parallel_tool_calls`. */
export const MAX_PARALLEL_CALLS = 4;

/** A function's arguments when it declares no `parameters`: an empty object. */
const NO_ARGUMENTS = { type: 'object', properties: {}, additionalProperties: false };

/** How a chat request uses its tools: which the model is shown, and which it may call. */
export interface ToolUse {
  /** The tools rendered into the prompt. */
  shown: FunctionTool[];
  /** Whether the answer may be text instead of calls (`auto`). */
  textAllowed: boolean;
  parallel: boolean;
}

/** A request's grammar, and the field it came from (named in a 422 when its automaton cannot be built). */
export interface PlannedGrammar {
  pattern: string;
  field: string;
}

/**
 * Runs a grammar compiler for `field`: a source (the JSON Schemas it compiles) over the size limit, a GrammarError,
 * an oversized pattern or a regex syntax error is a 422 naming the field. The automaton is built later, off the
 * event loop (`checkGrammarOffThread`).
 */
function compile(field: string, source: unknown, build: () => string): PlannedGrammar {
  const size = JSON.stringify(source ?? null).length;
  if (size > MAX_GRAMMAR_LENGTH) {
    throw ApiError.validation(
      `\`${field}\` is too large for a grammar: ${size} characters of JSON, over the limit of ${MAX_GRAMMAR_LENGTH}`,
    );
  }
  return { pattern: compileOrRefuse(build, field), field };
}

/** The request's tools as the prompt shows them and the grammar allows them; null when they play no part. */
export function toolUse(body: ChatCompletionRequest): ToolUse | null {
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? 'auto';
  if (tools.length === 0 || choice === 'none') return null;
  return {
    shown: tools,
    textAllowed: choice === 'auto',
    parallel: body.parallel_tool_calls ?? true,
  };
}

/** The tools a call may name: all of them, or the one `tool_choice` names. */
function callable(body: ChatCompletionRequest, use: ToolUse): FunctionTool[] {
  const choice = body.tool_choice;
  if (typeof choice !== 'object' || choice === null) return use.shown;
  return use.shown.filter((t) => t.function.name === choice.function.name);
}

/**
 * The regex of an answer that calls tools: one compact call object `{"name":"f","arguments":{...}}`, the
 * arguments valid under f's parameters; with `parallel`, a JSON array of 1 to MAX_PARALLEL_CALLS of them.
 */
export function toolCallRegex(tools: readonly FunctionTool[], parallel: boolean): string {
  const calls = tools.map((tool, i) => {
    const name = escapeRegex(JSON.stringify(tool.function.name));
    let args: string;
    try {
      args = jsonSchemaRegex(tool.function.parameters ?? NO_ARGUMENTS);
    } catch (err) {
      if (err instanceof GrammarError) {
        throw new GrammarError(`\`tools[${i}].function.parameters\` (${tool.function.name}): ${err.message}`);
      }
      throw err;
    }
    return `\\{"name":${name},"arguments":(?:${args})\\}`;
  });
  const call = `(?:${calls.join('|')})`;
  return parallel ? `\\[${call}(?:,${call}){0,${MAX_PARALLEL_CALLS - 1}}\\]` : call;
}

/** The chat request's grammar: its tool calls', its `response_format`'s, or null for free text. */
export function chatPattern(body: ChatCompletionRequest, use: ToolUse | null): PlannedGrammar | null {
  if (use) {
    const tools = callable(body, use);
    return compile('tools', tools, () => {
      const calls = toolCallRegex(tools, use.parallel);
      // `auto`: the calls, or text that cannot be taken for one (it does not open with `{` or `[`)
      return use.textAllowed ? `(?:${calls})|(?:[^{\\[][\\s\\S]*)?` : calls;
    });
  }
  const format = body.response_format;
  if (!format || format.type === 'text') return null;
  if (format.type === 'json_object') return compile('response_format', null, () => jsonObjectRegex());
  const schema = format.json_schema.schema ?? {};
  return compile('response_format.json_schema.schema', schema, () => jsonSchemaRegex(schema));
}

/** The completions request's TGI `grammar` as the engine's regex, or null. */
export function completionPattern(body: CompletionRequest): PlannedGrammar | null {
  return body.grammar ? { pattern: grammarPattern(body.grammar), field: 'grammar' } : null;
}
