/**
 * The continuous batching engine for one loaded model. It owns the loop: admit waiting requests (scheduler),
 * prefill them as a batch of their own and join them to the running batch (KV batch), step every row once per
 * forward call, choose each row's token (sampler), detokenize, check stops, emit events, and drop finished and
 * cancelled rows at once. It knows nothing of HTTP or Redis.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { LoadedModel } from '@switchyard/models';
import { GrammarCursor, GrammarError, GrammarMasks, ModelGrammars } from './constraints';
import { IncrementalDetokenizer } from './detokenizer';
import { KvCache, PrefilledCache, prefillCache, StepLogits } from './kv-batch';
import { StepBuffers } from './step-buffers';
import { ValidationError } from './parameters';
import { randomSeed } from './rng';
import {
  createSamplerState,
  isPlainGreedy,
  observeToken,
  Sampler,
  SampleResult,
  SamplerState,
  TokenChoice,
} from './sampler';
import {
  BatchShape,
  DEFAULT_SCHEDULER_CONFIG,
  EMPTY_BATCH,
  projectedTokens,
  QueueEntry,
  Scheduler,
  SchedulerConfig,
} from './scheduler';
import { checkStop, StopCriteria } from './stopping';
import type {
  EngineRequest,
  EventSink,
  FinalEvent,
  FinishReason,
  PrefillToken,
  SequenceDetails,
  TokenEvent,
  TokenInfo,
} from './types';

export interface EngineConfig extends SchedulerConfig {
  /** The model's limit on prompt plus generated tokens; defaults to its max positions. */
  maxTotalTokens?: number;
}

/** What one forward call did, for metrics and for tests that hold the engine to its budgets. */
/**
 * Prefill calls that may run back to back between two decode steps. With the prefill budget, this bounds how long
 * the running rows wait for their next token when requests trickle in one per prefill (each call has a fixed cost
 * that a token count does not see); in this project's traces a wave of clients coming back took two to seven.
 */
export const MAX_CHAINED_PREFILLS = 8;

export interface StepStats {
  phase: 'prefill' | 'decode';
  /** Rows in the batch after the call (a prefill counts the joined batch). */
  batchSize: number;
  /** KV columns after the call. */
  width: number;
  /** batchSize × width: the padded tokens held in the KV cache. */
  paddedTokens: number;
  /** The padded tokens the batch may still reach if no row leaves. */
  projectedTokens: number;
  forwardMs: number;
  /** The whole step: forward, sampling, stop checks and events. */
  inferenceMs: number;
  /** A prefill whose rows joined a running batch (TGI's `concat`). */
  concatenated: boolean;
  /** Rows prefilled (prefill) and rows that finished or were cancelled at this call. */
  joined: number;
  left: number;
}

interface Row {
  request: EngineRequest;
  sink: EventSink;
  inputIds: number[];
  generated: number[];
  sampler: SamplerState;
  /** Greedy with no penalty and no top tokens (fixed by its parameters): it takes the graph's argmax. */
  plainGreedy: boolean;
  detokenizer: IncrementalDetokenizer;
  /** The row's place in its grammar, when its output is constrained. */
  grammar: GrammarCursor | null;
  criteria: StopCriteria;
  tokens: TokenInfo[];
  topTokens: TokenInfo[][];
  prefill: PrefillToken[];
  queuedAt: number;
  admittedAt: number;
  finished: boolean;
}

class Waiting implements QueueEntry {
  constructor(readonly row: Row) {}

  get inputLength(): number {
    return this.row.inputIds.length;
  }

  get maxNewTokens(): number {
    return this.row.criteria.maxNewTokens;
  }

  get cancelled(): boolean {
    return this.row.request.signal?.aborted ?? false;
  }
}

export interface GenerationResult {
  final: FinalEvent;
  tokens: TokenEvent[];
}

export class Engine {
  readonly scheduler: Scheduler<Waiting>;
  readonly maxTotalTokens: number;
  /** Called after every forward call. */
  onStep: ((stats: StepStats) => void) | null = null;

  private readonly sampler: Sampler;
  private readonly grammars: ModelGrammars;
  private readonly buffers = new StepBuffers();
  private batch: KvCache | null = null;
  private rows: Row[] = [];
  private lastTokens = new Int32Array(64);
  private loop: Promise<void> | null = null;
  private closed = false;

  constructor(
    readonly model: LoadedModel,
    config: Partial<EngineConfig> = {},
  ) {
    const { maxTotalTokens, ...scheduler } = config;
    this.maxTotalTokens = Math.min(maxTotalTokens ?? model.config.maxPositions, model.config.maxPositions);
    this.scheduler = new Scheduler({ ...DEFAULT_SCHEDULER_CONFIG, ...scheduler });
    this.sampler = new Sampler(model.config.vocabSize);
    this.grammars = new ModelGrammars(model.tokenizer, model.config.vocabSize);
  }

  /** Rows in the running batch. */
  get running(): number {
    return this.rows.length;
  }

  get waiting(): number {
    return this.scheduler.waiting;
  }

  /** The running batch's shape as admission sees it. */
  shape(): BatchShape {
    if (!this.batch || this.rows.length === 0) return EMPTY_BATCH;
    let maxRemaining = 0;
    for (const row of this.rows) maxRemaining = Math.max(maxRemaining, remaining(row));
    return { size: this.rows.length, width: this.batch.width, maxRemaining };
  }

  /**
   * Queues a request; its events go to `sink` in order. Throws `ValidationError` for a request the engine can
   * never run (empty prompt, ids outside the vocabulary, over the model's or the batch's limits).
   */
  submit(request: EngineRequest, sink: EventSink): void {
    if (this.closed) throw new Error('the engine is closed');
    const { inputIds, parameters } = request;
    if (inputIds.length === 0) throw new ValidationError('`inputs` cannot be empty');
    const vocab = this.model.config.vocabSize;
    for (const id of inputIds) {
      if (!Number.isInteger(id) || id < 0 || id >= vocab)
        throw new ValidationError(`token id ${id} is outside the vocabulary`);
    }
    if (inputIds.length + parameters.maxNewTokens > this.maxTotalTokens) {
      throw new ValidationError(
        `\`inputs\` tokens + \`max_new_tokens\` must be <= ${this.maxTotalTokens}. Given: ${inputIds.length} \`inputs\` tokens and ${parameters.maxNewTokens} \`max_new_tokens\``,
      );
    }
    const unfit = this.scheduler.fitsAlone({ inputLength: inputIds.length, maxNewTokens: parameters.maxNewTokens });
    if (unfit) throw new ValidationError(unfit);
    // built here, so that a grammar this model cannot serve is refused before it is queued
    if (parameters.grammar !== null) this.grammarMasks(parameters.grammar);

    if (parameters.bestOf > 1) {
      this.submitBestOf(request, sink);
      return;
    }
    this.scheduler.enqueue(new Waiting(this.newRow(request, sink)));
    this.loop ??= this.run();
  }

  /** Runs one request to its end and collects its events; rejects on an error event. */
  generate(request: EngineRequest): Promise<GenerationResult> {
    return new Promise((resolve, reject) => {
      const tokens: TokenEvent[] = [];
      this.submit(request, (event) => {
        if (event.type === 'token') tokens.push(event);
        else if (event.type === 'final') resolve({ final: event, tokens });
        else reject(Object.assign(new Error(event.message), { errorType: event.errorType }));
      });
    });
  }

  /** Stops taking requests and waits for the running and waiting ones to finish. */
  async drain(): Promise<void> {
    this.closed = true;
    while (this.loop) await this.loop;
  }

  private grammarMasks(pattern: string): GrammarMasks {
    try {
      return this.grammars.masks(pattern);
    } catch (err) {
      if (err instanceof GrammarError) throw new ValidationError(`grammar: ${err.message}`);
      throw err;
    }
  }

  private newRow(request: EngineRequest, sink: EventSink): Row {
    const { parameters } = request;
    const sampler = createSamplerState(parameters, request.inputIds);
    return {
      request,
      sink,
      inputIds: request.inputIds,
      generated: [],
      sampler,
      plainGreedy: isPlainGreedy(parameters, sampler),
      detokenizer: new IncrementalDetokenizer(this.model.tokenizer),
      grammar:
        parameters.grammar === null
          ? null
          : this.grammarMasks(parameters.grammar).cursor(parameters.ignoreEos ? [] : this.model.config.eosTokenIds),
      criteria: {
        eosTokenIds: parameters.ignoreEos ? [] : this.model.config.eosTokenIds,
        stop: parameters.stop,
        maxNewTokens: parameters.maxNewTokens,
        maxTotalTokens: this.maxTotalTokens,
      },
      tokens: [],
      topTokens: [],
      prefill: [],
      queuedAt: performance.now(),
      admittedAt: 0,
      finished: false,
    };
  }

  /**
   * `best_of`: n sampled sequences as n rows, each with its own seed; the one with the highest total logprob is
   * the answer, the others go in `best_of_sequences`.
   */
  private submitBestOf(request: EngineRequest, sink: EventSink): void {
    const n = request.parameters.bestOf;
    const finals: FinalEvent[] = [];
    let failed = false;
    for (let i = 0; i < n; i++) {
      const child: EngineRequest = {
        ...request,
        id: `${request.id}/${i}`,
        parameters: { ...request.parameters, bestOf: 1, seed: randomSeed(), details: true },
      };
      this.scheduler.enqueue(
        new Waiting(
          this.newRow(child, (event) => {
            if (failed || event.type === 'token') return;
            if (event.type === 'error') {
              failed = true;
              sink(event);
              return;
            }
            finals.push(event);
            if (finals.length < n) return;
            const score = (f: FinalEvent) => f.details.tokens.reduce((s, t) => s + t.logprob, 0);
            const ranked = [...finals].sort((a, b) => score(b) - score(a));
            const [best, ...rest] = ranked;
            sink({
              ...best,
              details: {
                ...best.details,
                bestOfSequences: rest.map((f) => ({ generatedText: f.generatedText, ...f.details })),
              },
            });
          }),
        ),
      );
    }
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    // Start on a microtask, so that requests submitted in the same tick share the first prefill.
    await Promise.resolve();
    // Prefills may follow one another, with no decode step between them, within one max_batch_prefill_tokens and
    // MAX_CHAINED_PREFILLS calls, so that requests arriving while one prefills (a wave of clients coming back) join
    // the next prefill instead of waiting for a decode step of the whole batch each. `prefilled` counts the prefill
    // tokens since the last decode step, `chained` the prefill calls, and `decodingRows` the rows that step left
    // running: those a further prefill pauses.
    let prefilled = 0;
    let chained = 0;
    let decodingRows = 0;
    try {
      while (this.batch || this.scheduler.waiting > 0) {
        this.dropCancelledRows();
        if (!this.batch) prefilled = chained = decodingRows = 0; // no row waits on the budget
        const admission = this.scheduler.nextBatch(this.shape(), {
          prefillBudget: chained < MAX_CHAINED_PREFILLS ? this.scheduler.config.maxBatchPrefillTokens - prefilled : 0,
          decodingRows,
        });
        for (const entry of admission.dropped) this.cancel(entry.row);
        if (admission.admitted.length > 0) {
          await this.safely(
            admission.admitted.map((e) => e.row),
            () => this.prefill(admission.admitted.map((e) => e.row)),
          );
          prefilled += admission.prefillTokens;
          chained++;
        } else if (this.batch) {
          if (chained === 0) this.scheduler.noteDecodeStep(); // a step that admitted nothing
          await this.safely(this.rows, () => this.decode());
          prefilled = chained = 0;
          decodingRows = this.rows.length;
        }
        // Let timers and sockets run between steps (ONNX Runtime's run already yields while it computes), and
        // requests submitted meanwhile reach the queue before the next admission.
        await yieldToEventLoop();
      }
    } finally {
      this.loop = null;
    }
  }

  /** Runs a forward phase; if the model fails, every row involved ends with a generation error. */
  private async safely(rows: Row[], phase: () => Promise<void>): Promise<void> {
    try {
      await phase();
    } catch (err) {
      const message = `generation failed: ${(err as Error).message ?? String(err)}`;
      for (const row of rows) {
        if (row.finished) continue;
        row.finished = true;
        row.sink({ type: 'error', errorType: 'generation', message });
      }
      this.removeFinished();
    }
  }

  /**
   * Prefills the admitted rows as a batch of their own and joins them to the running batch. Rows of very
   * different prompt lengths are run in a few length groups (see `prefillGroups`), each one forward call, so that
   * a short prompt does not pay for the longest one's padding; the groups are joined like any other batch.
   */
  private async prefill(admitted: Row[]): Promise<void> {
    const now = performance.now();
    for (const row of admitted) row.admittedAt = now;
    const started = performance.now();
    let forwardMs = 0;
    const concatenated = this.batch !== null && this.rows.length > 0;
    for (const group of prefillGroups(admitted.map((r) => r.inputIds.length))) {
      const groupRows = group.map((i) => admitted[i]);
      const callStarted = performance.now();
      const prefilled = await prefillCache(
        this.model.session,
        this.buffers,
        groupRows.map((r) => r.inputIds),
        {
          allPositions: groupRows.some((r) => r.request.parameters.decoderInputDetails),
          wantLogits: groupRows.some((r) => !r.plainGreedy),
        },
      );
      forwardMs += performance.now() - callStarted;
      for (let r = 0; r < groupRows.length; r++) {
        const row = groupRows[r];
        if (row.request.parameters.decoderInputDetails) row.prefill = this.prefillTokens(row, prefilled, r);
        this.accept(row, this.choose(row, prefilled, prefilled.logitsRow(r, row.inputIds.length - 1)));
      }
      // Each group joins the running batch directly: its rows are copied once.
      if (this.batch) this.batch.concat(prefilled.batch);
      else this.batch = prefilled.batch;
      this.rows.push(...groupRows);
    }
    this.report('prefill', started, forwardMs, concatenated, admitted.length, this.removeFinished());
  }

  private async decode(): Promise<void> {
    const rows = this.rows;
    if (this.lastTokens.length < rows.length) this.lastTokens = new Int32Array(rows.length * 2);
    const tokens = this.lastTokens;
    // A step whose rows all take the graph's argmax leaves the logits ([rows, vocab] floats) in the session.
    let wantLogits = false;
    for (let r = 0; r < rows.length; r++) {
      tokens[r] = rows[r].generated[rows[r].generated.length - 1];
      if (!rows[r].plainGreedy) wantLogits = true;
    }
    const started = performance.now();
    const step = await this.batch!.step(tokens, wantLogits);
    const forwardMs = performance.now() - started;
    for (let r = 0; r < rows.length; r++) this.accept(rows[r], this.choose(rows[r], step, r));
    this.report('decode', started, forwardMs, false, 0, this.removeFinished());
  }

  /**
   * The row's next token from logits row `index`. A plain greedy row takes the graph's argmax and log-sum-exp
   * where the session computes them, and so never walks the vocabulary in JS.
   */
  private choose(row: Row, step: StepLogits, index: number): SampleResult {
    const params = row.request.parameters;
    const vocab = this.model.config.vocabSize;
    if (step.argmax && step.logSumExp && row.plainGreedy) {
      const id = Number(step.argmax[index]);
      const chosen = step.logitsMax ? step.logitsMax[index] : step.logits![index * vocab + id];
      return { id, logprob: chosen - step.logSumExp[index], top: [] };
    }
    // the step fetched the logits: `decode` asks for them whenever a row is not plain greedy
    if (row.grammar) row.grammar.budget = remaining(row);
    return this.sampler.sample(
      step.logits!.subarray(index * vocab, (index + 1) * vocab),
      params,
      row.sampler,
      row.grammar,
    );
  }

  private report(
    phase: StepStats['phase'],
    started: number,
    forwardMs: number,
    concatenated: boolean,
    joined: number,
    left: number,
  ): void {
    if (!this.onStep) return;
    const size = this.rows.length;
    const width = this.batch?.width ?? 0;
    this.onStep({
      phase,
      batchSize: size,
      width,
      paddedTokens: size * width,
      projectedTokens: projectedTokens(this.shape()),
      forwardMs,
      inferenceMs: performance.now() - started,
      concatenated,
      joined,
      left,
    });
  }

  /** Takes in a chosen token: records it, emits its event, and ends the row when a stop criterion holds. */
  private accept(row: Row, choice: SampleResult): void {
    const { id } = choice;
    const params = row.request.parameters;
    row.generated.push(id);
    observeToken(row.sampler, id);
    const special = this.model.tokenizer.specialIds.has(id);
    const previousTextLength = row.detokenizer.text.length;
    let text = special ? (this.model.tokenizer.idToToken(id) ?? '') : row.detokenizer.push(id);
    let finish = checkStop(
      {
        tokenId: id,
        generatedTokens: row.generated.length,
        inputTokens: row.inputIds.length,
        text: row.detokenizer.text,
        previousTextLength,
      },
      row.criteria,
    );
    if (row.grammar && !row.criteria.eosTokenIds.includes(id)) {
      if (!row.grammar.advance(id)) {
        row.finished = true;
        row.sink({
          type: 'error',
          errorType: 'generation',
          message: 'no token of the vocabulary can continue the grammar',
        });
        return;
      }
      // a complete output that nothing may follow ends as an eos token would end it
      if (row.grammar.complete && finish !== 'stop_sequence') finish = 'eos_token';
    }
    if (finish) text += row.detokenizer.flush();
    const token: TokenInfo = { id, text, logprob: choice.logprob, special };
    const topTokens = choice.top.map((t) => this.tokenInfo(t));
    if (params.details) {
      row.tokens.push(token);
      if (params.topNTokens > 0) row.topTokens.push(topTokens);
    }
    row.sink({ type: 'token', index: row.generated.length - 1, token, topTokens });
    if (finish) this.finish(row, finish);
  }

  private finish(row: Row, reason: FinishReason): void {
    row.finished = true;
    const params = row.request.parameters;
    const details: SequenceDetails = {
      finishReason: reason,
      generatedTokens: row.generated.length,
      seed: params.seed,
      prefill: row.prefill,
      tokens: row.tokens,
      topTokens: row.topTokens,
    };
    const now = performance.now();
    const text = row.detokenizer.text;
    row.sink({
      type: 'final',
      generatedText: params.returnFullText
        ? (row.request.inputText ?? this.model.tokenizer.decode(row.inputIds)) + text
        : text,
      details,
      queueMs: row.admittedAt - row.queuedAt,
      inferenceMs: now - row.admittedAt,
      inputTokens: row.inputIds.length,
    });
  }

  private cancel(row: Row): void {
    if (row.finished) return;
    row.finished = true;
    row.sink({ type: 'error', errorType: 'cancelled', message: 'request cancelled' });
  }

  private dropCancelledRows(): void {
    let any = false;
    for (const row of this.rows) {
      if (!row.finished && row.request.signal?.aborted) {
        this.cancel(row);
        any = true;
      }
    }
    for (const entry of this.scheduler.dropCancelled()) this.cancel(entry.row);
    if (any) this.removeFinished();
  }

  /** Filters finished rows out of the batch (trimming shared padding); returns how many left. */
  private removeFinished(): number {
    const keep: number[] = [];
    for (let r = 0; r < this.rows.length; r++) if (!this.rows[r].finished) keep.push(r);
    const left = this.rows.length - keep.length;
    if (left === 0) return 0;
    if (keep.length === 0) {
      this.batch = null;
      this.rows = [];
    } else {
      this.batch!.filter(keep);
      this.rows = keep.map((r) => this.rows[r]);
    }
    return left;
  }

  private tokenInfo(choice: TokenChoice): TokenInfo {
    const special = this.model.tokenizer.specialIds.has(choice.id);
    return {
      id: choice.id,
      text: special ? (this.model.tokenizer.idToToken(choice.id) ?? '') : this.model.tokenizer.decode([choice.id]),
      logprob: choice.logprob,
      special,
    };
  }

  /** `decoder_input_details`: each prompt token's logprob given the tokens before it (the first has none). */
  private prefillTokens(row: Row, prefilled: PrefilledCache, r: number): PrefillToken[] {
    const vocab = this.model.config.vocabSize;
    return row.inputIds.map((id, i) => {
      let logprob: number | null = null;
      if (i > 0) {
        const offset = prefilled.logitsRow(r, i - 1) * vocab;
        logprob = logSoftmaxAt(prefilled.logits!.subarray(offset, offset + vocab), id);
      }
      return { id, text: this.model.tokenizer.decode([id]), logprob };
    });
  }
}

/**
 * Splits prompts into prefill groups: sorted longest first, a prompt joins the current group while the group's
 * padded size (rows × its longest prompt) stays within `slack` of its real tokens. A prefill's cost is its padded
 * tokens, and on a CPU a wider call gains little, so mixed lengths are cheaper as a few calls than as one.
 * Returns indices into `lengths`.
 */
export function prefillGroups(lengths: readonly number[], slack = 1.25): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a]);
  const groups: number[][] = [];
  let current: number[] = [];
  let longest = 0;
  let real = 0;
  for (const i of order) {
    const length = lengths[i];
    if (current.length > 0 && (current.length + 1) * longest > slack * (real + length)) {
      groups.push(current);
      current = [];
    }
    if (current.length === 0) {
      longest = length;
      real = 0;
    }
    current.push(i);
    real += length;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

function remaining(row: Row): number {
  const generated = row.generated.length;
  return Math.min(row.criteria.maxNewTokens - generated, row.criteria.maxTotalTokens - row.inputIds.length - generated);
}

function logSoftmaxAt(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(sum);
}
