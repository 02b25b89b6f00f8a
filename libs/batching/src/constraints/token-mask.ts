/**
 * Where a grammar's automaton meets a model's vocabulary. `TokenVocabulary` holds each token's text in a trie
 * (built once per tokenizer); `GrammarMasks` gives, per DFA state, the tokens whose whole text the automaton
 * accepts from there and the state each leads to, computed the first time a row reaches the state (one walk of
 * the trie, pruned where the automaton dies) and cached; `GrammarCursor` is one row's position: it masks the
 * row's logits and advances by the chosen token. After warm-up, a step costs a row one pass over its logits.
 */
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import type { Decoder } from '../detokenizer';
import type { LogitsMask } from '../sampler';
import { Automaton, compileGrammar } from './automaton';
import { GrammarError } from './errors';

/** The largest float32: what a banned token's logit becomes (as a -100 `logit_bias` does). */
const F32_MAX = 3.4028234663852886e38;

export interface VocabularySource extends Decoder {
  readonly specialIds: ReadonlySet<number>;
}

/** A tokenizer's tokens as text, in a trie of code points. Tokens that are special, empty, or part of a
 * character (a byte-level piece of a multi-byte character) have no text and are never allowed under a grammar. */
export class TokenVocabulary {
  /** Per trie node: its children's code points and nodes (CSR layout), and the tokens that end there. */
  private readonly childStart: Int32Array;
  private readonly childChar: Int32Array;
  private readonly childNode: Int32Array;
  private readonly tokenStart: Int32Array;
  private readonly tokenIds: Int32Array;
  /** Code points that some one-character token writes alone, sorted. */
  private readonly singles: Int32Array;
  readonly buildMs: number;

  constructor(
    source: VocabularySource,
    readonly size: number,
  ) {
    const started = performance.now();
    const children = [new Map<number, number>()];
    const ends: number[][] = [[]];
    const singles = new Set<number>();
    for (let id = 0; id < size; id++) {
      if (source.specialIds.has(id)) continue;
      let text: string;
      try {
        text = source.decode([id]);
      } catch {
        continue; // an id the tokenizer does not know (a padded vocabulary)
      }
      if (text.length === 0 || text.includes('\uFFFD')) continue;
      let node = 0;
      let chars = 0;
      for (const ch of text) {
        const c = ch.codePointAt(0)!;
        let next = children[node].get(c);
        if (next === undefined) {
          next = children.length;
          children.push(new Map<number, number>());
          ends.push([]);
          children[node].set(c, next);
        }
        node = next;
        chars++;
      }
      ends[node].push(id);
      if (chars === 1) singles.add(text.codePointAt(0)!);
    }
    const n = children.length;
    this.childStart = new Int32Array(n + 1);
    this.tokenStart = new Int32Array(n + 1);
    let edges = 0;
    let tokens = 0;
    for (let i = 0; i < n; i++) {
      edges += children[i].size;
      tokens += ends[i].length;
    }
    this.childChar = new Int32Array(edges);
    this.childNode = new Int32Array(edges);
    this.tokenIds = new Int32Array(tokens);
    edges = tokens = 0;
    for (let i = 0; i < n; i++) {
      this.childStart[i] = edges;
      for (const [c, child] of children[i]) {
        this.childChar[edges] = c;
        this.childNode[edges++] = child;
      }
      this.tokenStart[i] = tokens;
      for (const id of ends[i]) this.tokenIds[tokens++] = id;
    }
    this.childStart[n] = edges;
    this.tokenStart[n] = tokens;
    this.singles = Int32Array.from([...singles].sort((a, b) => a - b));
    this.buildMs = performance.now() - started;
  }

  /** Whether a one-character token writes some character in [lo, hi]. */
  writes(lo: number, hi: number): boolean {
    const s = this.singles;
    let a = 0;
    let b = s.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (s[mid] < lo) a = mid + 1;
      else b = mid;
    }
    return a < s.length && s[a] <= hi;
  }

  /** Every token whose text the automaton takes whole from `state`, with the state it ends in, by id. */
  walk(automaton: Automaton, state: number): { ids: Int32Array; next: Int32Array } {
    const found: number[] = [];
    const stack: number[] = [0, state];
    while (stack.length > 0) {
      const at = stack.pop()!;
      const node = stack.pop()!;
      for (let e = this.childStart[node]; e < this.childStart[node + 1]; e++) {
        const to = automaton.next(at, this.childChar[e]);
        if (to < 0) continue;
        const child = this.childNode[e];
        for (let t = this.tokenStart[child]; t < this.tokenStart[child + 1]; t++) found.push(this.tokenIds[t], to);
        stack.push(child, to);
      }
    }
    const order = Array.from({ length: found.length / 2 }, (_, i) => i).sort((a, b) => found[a * 2] - found[b * 2]);
    const ids = new Int32Array(order.length);
    const next = new Int32Array(order.length);
    order.forEach((o, i) => {
      ids[i] = found[o * 2];
      next[i] = found[o * 2 + 1];
    });
    return { ids, next };
  }
}

/** The tokens allowed from one state: sorted ids, the state each leads to, and the farthest of those states. */
interface StateMask {
  ids: Int32Array;
  next: Int32Array;
  /** The largest distance to acceptance among `next`: a budget at least this large needs no filtering. */
  farthest: number;
}

/** One grammar on one vocabulary: its automaton and the masks of the states rows have reached. */
export class GrammarMasks {
  private readonly masks = new Map<number, StateMask>();
  readonly automaton: Automaton;

  constructor(
    pattern: string,
    readonly vocabulary: TokenVocabulary,
  ) {
    this.automaton = compileGrammar(pattern).withWritable((lo, hi) => vocabulary.writes(lo, hi));
    if (!this.automaton.isFinal(this.automaton.initial) && this.mask(this.automaton.initial).ids.length === 0) {
      throw new GrammarError("no token of this model's vocabulary can begin the grammar's text");
    }
  }

  mask(state: number): StateMask {
    let mask = this.masks.get(state);
    if (mask === undefined) {
      const { ids, next } = this.vocabulary.walk(this.automaton, state);
      let farthest = 0;
      for (const s of next) farthest = Math.max(farthest, this.automaton.distance[s]);
      mask = { ids, next, farthest };
      this.masks.set(state, mask);
    }
    return mask;
  }

  cursor(eos: readonly number[]): GrammarCursor {
    return new GrammarCursor(this, eos);
  }
}

/** One row's place in its grammar, and the mask its sampler applies. */
export class GrammarCursor implements LogitsMask {
  /** The tokens the row may still generate, the next one included: the engine sets it before each step. */
  budget = Infinity;
  private state: number;
  private saved = new Float32Array(64);

  constructor(
    private readonly grammar: GrammarMasks,
    /** The model's eos ids: allowed wherever the output so far is a whole match. */
    private readonly eos: readonly number[],
  ) {
    this.state = grammar.automaton.initial;
  }

  /** The output so far is complete and nothing may follow: the row is done. */
  get complete(): boolean {
    return this.grammar.automaton.isFinal(this.state);
  }

  /** Whether the output so far is a whole match (so an eos token may end it). */
  get accepting(): boolean {
    return this.grammar.automaton.accepting[this.state] === 1;
  }

  /**
   * Bans in `logits` every token the grammar does not allow next. When the budget runs short, only tokens that
   * leave a way to finish within it remain (each later token can write at least one character, and the
   * distances count only characters some one-character token writes), so an output that fits is closed in time.
   */
  apply(logits: Float32Array): void {
    const { budget, eos } = this;
    const { ids, next, farthest } = this.grammar.mask(this.state);
    const distance = this.grammar.automaton.distance;
    const accepting = this.accepting;
    if (this.saved.length < ids.length + eos.length) this.saved = new Float32Array((ids.length + eos.length) * 2);
    const saved = this.saved;
    for (let i = 0; i < ids.length; i++) saved[i] = logits[ids[i]];
    for (let j = 0; j < eos.length; j++) saved[ids.length + j] = logits[eos[j]];
    logits.fill(-F32_MAX);
    const within = budget - 1;
    // where nothing fits the budget the output cannot close in time: any allowed token, and it ends at `length`
    // (an eos token is a way to finish where the text so far is a whole match)
    const filter = farthest > within && ((accepting && eos.length > 0) || this.reachable(ids, next, within));
    for (let i = 0; i < ids.length; i++) {
      if (filter && distance[next[i]] > within) continue;
      logits[ids[i]] = saved[i];
    }
    if (accepting) for (let j = 0; j < eos.length; j++) logits[eos[j]] = saved[ids.length + j];
  }

  /**
   * Takes the chosen token; false if the grammar does not allow it, which happens only where no token of the
   * vocabulary could continue the text (every logit was banned).
   */
  advance(id: number): boolean {
    const { ids, next } = this.grammar.mask(this.state);
    let lo = 0;
    let hi = ids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ids[mid] < id) lo = mid + 1;
      else if (ids[mid] > id) hi = mid - 1;
      else {
        this.state = next[mid];
        return true;
      }
    }
    return false;
  }

  private reachable(ids: Int32Array, next: Int32Array, within: number): boolean {
    const distance = this.grammar.automaton.distance;
    for (let i = 0; i < ids.length; i++) if (distance[next[i]] <= within) return true;
    return false;
  }
}

/** One model's grammars: its vocabulary, built on first use, and the grammars its rows have used lately. */
export class ModelGrammars {
  private vocabulary: TokenVocabulary | null = null;
  private readonly grammars: LRUCache<string, GrammarMasks>;

  constructor(
    private readonly source: VocabularySource,
    private readonly vocabSize: number,
    capacity = 64,
  ) {
    this.grammars = new LRUCache({ max: capacity });
  }

  /** `pattern` on this model's vocabulary, built once; throws GrammarError when the grammar cannot serve it. */
  masks(pattern: string): GrammarMasks {
    let grammar = this.grammars.get(pattern);
    if (grammar === undefined) {
      this.vocabulary ??= new TokenVocabulary(this.source, this.vocabSize);
      grammar = new GrammarMasks(pattern, this.vocabulary);
      this.grammars.set(pattern, grammar);
    }
    return grammar;
  }
}
