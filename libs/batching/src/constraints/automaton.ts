import { GrammarError } from './errors';

/** Compiles `pattern` (or takes it from the cache); throws GrammarError when it cannot serve. */
export function checkGrammar(pattern: string): void {
  void pattern;
  throw new GrammarError('not implemented yet');
}
