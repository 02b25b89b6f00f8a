/**
 * A grammar's regex as a minimal DFA over Unicode code points, built with refa (parse, NFA, subset construction,
 * minimisation) and flattened into typed arrays for the decode loop: a dense table for ASCII and sorted ranges for
 * the rest. Each state also knows how many characters it is from acceptance, which lets a row close its output
 * within its token budget.
 */
import { DFA, JS, NFA, TooManyNodesError } from 'refa';
import { LRUCache } from 'lru-cache';
import { GrammarError, MAX_GRAMMAR_LENGTH, MAX_GRAMMAR_STATES } from './errors';

const ASCII = 128;
const DEAD = -1;

export class Automaton {
  /** [lo, hi, target] triples per state, sorted by lo; the ASCII part is also in `ascii`. */
  private readonly ranges: Int32Array[];

  constructor(
    readonly initial: number,
    /** 1 where the state accepts. */
    readonly accepting: Uint8Array,
    /** states × 128: the next state for an ASCII character, or -1. */
    private readonly ascii: Int32Array,
    ranges: Int32Array[],
    /**
     * The fewest characters from each state to acceptance, counting only characters that `single` allows
     * (those one token can write alone) where such a path exists.
     */
    readonly distance: Int32Array,
  ) {
    this.ranges = ranges;
  }

  /** states × 128: the next state for each ASCII character, or -1. */
  get asciiTable(): Int32Array {
    return this.ascii;
  }

  get states(): number {
    return this.accepting.length;
  }

  /** The state after `char` (a code point), or -1. */
  next(state: number, char: number): number {
    if (char < ASCII) return this.ascii[state * ASCII + char];
    const r = this.ranges[state];
    let lo = 0;
    let hi = r.length / 3 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (char < r[mid * 3]) hi = mid - 1;
      else if (char > r[mid * 3 + 1]) lo = mid + 1;
      else return r[mid * 3 + 2];
    }
    return DEAD;
  }

  /** The transitions out of `state`: [lo, hi, target] triples over code points, sorted. */
  out(state: number): Int32Array {
    return this.ranges[state];
  }

  /** Whether no character leads on from `state` (its output is complete). */
  isFinal(state: number): boolean {
    return this.accepting[state] === 1 && this.ranges[state].length === 0;
  }

  /** Whether `text` is in the language, from the initial state. */
  matches(text: string): boolean {
    let state = this.initial;
    for (const ch of text) {
      state = this.next(state, ch.codePointAt(0)!);
      if (state === DEAD) return false;
    }
    return this.accepting[state] === 1;
  }

  /**
   * Recomputes `distance` counting only characters for which `writable` holds (a vocabulary's one-character
   * tokens); a state with no such path keeps its distance over every character.
   */
  withWritable(writable: (lo: number, hi: number) => boolean): Automaton {
    const distance = distances(this.accepting, this.ranges, writable);
    const fallback = this.distance;
    for (let s = 0; s < distance.length; s++) if (distance[s] < 0) distance[s] = fallback[s];
    return new Automaton(this.initial, this.accepting, this.ascii, this.ranges, distance);
  }
}

/** The fewest characters from each state to an accepting one, over the ranges `usable` keeps (-1: none). */
function distances(
  accepting: Uint8Array,
  ranges: Int32Array[],
  usable: (lo: number, hi: number) => boolean = () => true,
): Int32Array {
  const n = accepting.length;
  const reverse: number[][] = Array.from({ length: n }, () => []);
  for (let s = 0; s < n; s++) {
    const r = ranges[s];
    for (let i = 0; i < r.length; i += 3) if (usable(r[i], r[i + 1])) reverse[r[i + 2]].push(s);
  }
  const distance = new Int32Array(n).fill(-1);
  const queue: number[] = [];
  for (let s = 0; s < n; s++) {
    if (accepting[s]) {
      distance[s] = 0;
      queue.push(s);
    }
  }
  for (let head = 0; head < queue.length; head++) {
    const s = queue[head];
    for (const p of reverse[s]) {
      if (distance[p] < 0) {
        distance[p] = distance[s] + 1;
        queue.push(p);
      }
    }
  }
  return distance;
}

/** An automaton as plain typed arrays, to cross a thread boundary. */
export interface AutomatonParts {
  initial: number;
  accepting: Uint8Array;
  ascii: Int32Array;
  ranges: Int32Array[];
  distance: Int32Array;
}

export function automatonParts(a: Automaton): AutomatonParts {
  const states = Array.from({ length: a.states }, (_, s) => a.out(s));
  return { initial: a.initial, accepting: a.accepting, ascii: a.asciiTable, ranges: states, distance: a.distance };
}

export function automatonFromParts(p: AutomatonParts): Automaton {
  return new Automaton(p.initial, p.accepting, p.ascii, p.ranges, p.distance);
}

/** Patterns compiled in this process; a grammar sent again (a tool set, a schema) costs nothing. */
const cache = new LRUCache<string, Automaton | GrammarError>({ max: 256 });

/** The outcome of compiling `pattern` in this process, if it is known: an automaton, or the error. */
export function knownGrammar(pattern: string): Automaton | GrammarError | undefined {
  return cache.get(pattern);
}

/** Records the outcome of compiling `pattern` elsewhere (on a compile thread). */
export function rememberGrammar(pattern: string, outcome: Automaton | GrammarError): void {
  cache.set(pattern, outcome);
}

/**
 * The grammar's automaton, compiled once per process; throws GrammarError when it cannot serve. A large grammar
 * takes a few hundred milliseconds: callers on an event loop that serves others compile it first with
 * `compileGrammarOffThread`, and this then finds it in the cache.
 */
export function compileGrammar(pattern: string): Automaton {
  let compiled = cache.get(pattern);
  if (compiled === undefined) {
    compiled = buildOutcome(pattern);
    cache.set(pattern, compiled);
  }
  if (compiled instanceof GrammarError) throw compiled;
  return compiled;
}

/** Compiles without the cache: the automaton, or the GrammarError saying why not. */
export function buildOutcome(pattern: string): Automaton | GrammarError {
  try {
    return build(pattern);
  } catch (err) {
    if (!(err instanceof GrammarError)) throw err;
    return err;
  }
}

function build(source: string): Automaton {
  if (source.length > MAX_GRAMMAR_LENGTH) {
    throw new GrammarError(`the grammar is ${source.length} characters, over the limit of ${MAX_GRAMMAR_LENGTH}`);
  }
  // TGI's and Outlines' regexes match the whole output, so anchors at the ends say nothing; strip them
  const anchored = /^\^?([\s\S]*?)(?<!\\)\$?$/.exec(source)![1];
  let dfa: DFA;
  try {
    RegExp(anchored, 'u'); // the platform's own parser gives the clearest syntax errors
    const { expression, maxCharacter } = JS.Parser.fromLiteral({ source: anchored, flags: 'u' }).parse({
      backreferences: 'throw',
      assertions: 'throw',
      maxNodes: MAX_GRAMMAR_STATES * 10,
    });
    const nfa = NFA.fromRegex(
      expression,
      { maxCharacter },
      { assertions: 'throw' },
      new NFA.LimitedNodeFactory(MAX_GRAMMAR_STATES * 10),
    );
    dfa = DFA.fromFA(nfa, new DFA.LimitedNodeFactory(MAX_GRAMMAR_STATES * 2));
    dfa.minimize();
  } catch (err) {
    if (err instanceof TooManyNodesError) {
      throw new GrammarError(`the grammar is too complex: its automaton would exceed ${MAX_GRAMMAR_STATES} states`);
    }
    const message = (err as Error).message ?? String(err);
    if (/assertion/i.test(message)) {
      throw new GrammarError(
        'the regex uses anchors, lookarounds or word boundaries inside it, which are not supported',
      );
    }
    if (/backreference/i.test(message))
      throw new GrammarError('the regex uses backreferences, which are not supported');
    throw new GrammarError(`the regex does not compile: ${message}`);
  }
  return flatten(dfa);
}

function flatten(dfa: DFA): Automaton {
  const index = new Map<DFA.Node, number>();
  const order: DFA.Node[] = [];
  const visit = (node: DFA.Node) => {
    if (!index.has(node)) {
      index.set(node, order.length);
      order.push(node);
    }
  };
  visit(dfa.initial);
  for (let i = 0; i < order.length; i++) for (const [, to] of order[i].out) visit(to);
  const n = order.length;
  if (n > MAX_GRAMMAR_STATES) {
    throw new GrammarError(
      `the grammar is too complex: its automaton has ${n} states, over the limit of ${MAX_GRAMMAR_STATES}`,
    );
  }
  const accepting = new Uint8Array(n);
  for (let s = 0; s < n; s++) if (dfa.finals.has(order[s])) accepting[s] = 1;
  let ranges = order.map((node) => {
    const triples: number[] = [];
    for (const [range, to] of node.out) triples.push(range.min, range.max, index.get(to)!);
    return Int32Array.from(triples);
  });
  // states that cannot reach acceptance are dead ends: drop every edge into them
  const live = distances(accepting, ranges);
  if (live[0] < 0) throw new GrammarError('the grammar matches no text at all');
  ranges = ranges.map((r) => {
    const kept: number[] = [];
    for (let i = 0; i < r.length; i += 3) if (live[r[i + 2]] >= 0) kept.push(r[i], r[i + 1], r[i + 2]);
    return Int32Array.from(kept);
  });
  const ascii = new Int32Array(n * ASCII).fill(DEAD);
  for (let s = 0; s < n; s++) {
    const r = ranges[s];
    for (let i = 0; i < r.length; i += 3) {
      for (let c = r[i]; c <= Math.min(r[i + 1], ASCII - 1); c++) ascii[s * ASCII + c] = r[i + 2];
    }
  }
  return new Automaton(0, accepting, ascii, ranges, live);
}
