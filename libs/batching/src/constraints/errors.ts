/** A grammar the engine cannot take: a schema outside the supported subset, a regex that does not compile, or
 * one over the size limits. Its message is for the client (the routes answer 422 with it). */
export class GrammarError extends Error {
  override name = 'GrammarError';
}

/** The largest grammar a request may carry, in UTF-16 code units of its source (JSON Schema text or regex). */
export const MAX_GRAMMAR_LENGTH = 64 * 1024;
/** The most DFA states a grammar may compile to: bounds compile time and the mask cache. */
export const MAX_GRAMMAR_STATES = 10_000;
