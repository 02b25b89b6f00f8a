/**
 * TGI's `grammar` parameter, and the one place a request's grammar (TGI's, OpenAI's `response_format`, a tool
 * call) becomes the regex the engine constrains decoding with. A grammar the engine cannot take is a 422 naming
 * what is wrong, checked here so that the API refuses it before it is queued.
 */
import { z } from 'zod';
import { compileGrammarOffThread, GrammarError, jsonSchemaRegex, MAX_GRAMMAR_LENGTH } from '@switchyard/batching';
import { ApiError } from './api-error';

const GRAMMAR_ERROR =
  '`grammar` must be {"type": "json", "value": <JSON Schema>} or {"type": "regex", "value": "<regex>"}';

export const Grammar = z
  .discriminatedUnion(
    'type',
    [
      z.object({
        type: z.literal('json'),
        value: z
          .union([z.record(z.string(), z.unknown()), z.boolean(), z.string()], { error: GRAMMAR_ERROR })
          .meta({ description: 'A JSON Schema (an object, or its JSON text).' }),
      }),
      z.object({ type: z.literal('regex'), value: z.string({ error: GRAMMAR_ERROR }) }),
    ],
    { error: GRAMMAR_ERROR },
  )
  .meta({
    id: 'Grammar',
    description:
      'Constrained decoding: the output is valid under a JSON Schema (compact JSON) or matches a regular expression ' +
      'in full, by construction.',
    examples: [
      { type: 'json', value: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } },
    ],
  });
export type Grammar = z.output<typeof Grammar>;

/**
 * Runs a grammar's translation to a regex; a GrammarError becomes the route's 422 naming `field`, the request field it
 * came from. The regex's size and syntax are checked here; its automaton is built off the event loop when the request
 * is prepared (`checkGrammarOffThread`).
 */
export function compileOrRefuse(compile: () => string, field = 'grammar'): string {
  try {
    const pattern = compile();
    if (pattern.length > MAX_GRAMMAR_LENGTH) {
      throw new GrammarError(
        `the grammar is too large: it compiles to ${pattern.length} characters, over the limit of ${MAX_GRAMMAR_LENGTH}`,
      );
    }
    try {
      RegExp(pattern, 'u');
    } catch (err) {
      throw new GrammarError(`the regex does not compile: ${(err as Error).message}`);
    }
    return pattern;
  } catch (err) {
    if (err instanceof GrammarError) throw ApiError.validation(`\`${field}\`: ${err.message}`);
    throw err;
  }
}

/** TGI's grammar as the engine's regex; a 422 when it cannot serve. */
export function grammarPattern(grammar: Grammar): string {
  const source = typeof grammar.value === 'string' ? grammar.value : JSON.stringify(grammar.value);
  if (source.length > MAX_GRAMMAR_LENGTH) {
    throw ApiError.validation(
      `\`grammar\` is too large: ${source.length} characters, over the limit of ${MAX_GRAMMAR_LENGTH}`,
    );
  }
  if (grammar.type === 'regex') return compileOrRefuse(() => grammar.value);
  let schema: unknown = grammar.value;
  if (typeof schema === 'string') {
    try {
      schema = JSON.parse(schema);
    } catch {
      throw ApiError.validation('`grammar.value` is a string that is not JSON: a JSON Schema must be an object');
    }
  }
  return compileOrRefuse(() => jsonSchemaRegex(schema));
}

/**
 * Builds the grammar's automaton on the compile thread (once per process and pattern), so that one the engine
 * cannot serve (too complex, lookarounds, backreferences) is a 422 before the request is queued.
 */
export async function checkGrammarOffThread(pattern: string, field = 'grammar'): Promise<void> {
  try {
    await compileGrammarOffThread(pattern);
  } catch (err) {
    if (err instanceof GrammarError) throw ApiError.validation(`\`${field}\`: ${err.message}`);
    throw err;
  }
}
