import { GrammarError } from './errors';

/** Full-match regex (JavaScript syntax, `u` flag) for the compact JSON texts valid under `schema`. */
export function jsonSchemaRegex(schema: unknown): string {
  void schema;
  throw new GrammarError('not implemented yet');
}

/** Full-match regex for any JSON object (OpenAI's `json_object`), nested to a bounded depth. */
export function jsonObjectRegex(): string {
  throw new GrammarError('not implemented yet');
}

/** Full-match regex for exactly one of `options`. */
export function choiceRegex(options: readonly string[]): string {
  return options.map(escapeRegex).join('|');
}

export function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}
