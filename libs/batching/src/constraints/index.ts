/**
 * Constrained decoding: a grammar is a regular expression whose full matches are the texts a row may produce.
 * JSON Schemas, "any JSON object" and fixed choices compile to such an expression (`json-schema.ts`); the
 * expression compiles to a minimal DFA (`automaton.ts`, with refa); the DFA meets the model's vocabulary in a
 * token mask per DFA state, built once and cached (`token-mask.ts`); a row's `GrammarCursor` masks its logits
 * each step and advances by the token chosen.
 */
export * from './errors';
export * from './json-schema';
export * from './automaton';
export * from './token-mask';
