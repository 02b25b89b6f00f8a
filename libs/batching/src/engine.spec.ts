import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadModel, LoadedModel } from '@switchyard/models';
import { GoldenCase, loadGoldens, modelDir } from '../../../test/support/repo';
import { Engine, GenerationResult, MAX_CHAINED_PREFILLS, StepStats } from './engine';
import { defaultParameters } from './parameters';
import { Rng } from './rng';
import type { EngineEvent, EngineRequest, GenerationParameters } from './types';

const goldens = loadGoldens('demo-tiny');
let model: LoadedModel;
let nextId = 0;

function request(inputIds: number[], params: Partial<GenerationParameters> = {}, signal?: AbortSignal): EngineRequest {
  return {
    id: `r${nextId++}`,
    inputIds,
    parameters: defaultParameters({ maxNewTokens: goldens.max_new_tokens, ...params }),
    signal,
  };
}

/** Golden ids, allowing a different continuation from a step where the golden top-2 margin is a near-tie. */
function assertGolden(ids: number[], golden: GoldenCase, context: string): void {
  const expected = golden.greedy_ids;
  for (let i = 0; i < expected.length; i++) {
    if (ids[i] === expected[i]) continue;
    assert.ok(
      golden.top2_margins[i] < 1e-2,
      `${context}: token ${i} is ${ids[i]}, golden ${expected[i]} (margin ${golden.top2_margins[i]}): ${JSON.stringify(golden.prompt)}`,
    );
    return;
  }
  assert.equal(ids.length, expected.length, `${context}: length differs for ${JSON.stringify(golden.prompt)}`);
}

const ids = (result: GenerationResult) => result.tokens.map((t) => t.token.id);

/** A filler request: random prompt of ordinary tokens (ids past the special ones), random length and budget. */
function filler(rng: Rng, signal?: AbortSignal): EngineRequest {
  const length = 1 + Math.floor(rng.next() * 48);
  const prompt = Array.from({ length }, () => 3 + Math.floor(rng.next() * (model.config.vocabSize - 3)));
  return request(prompt, { maxNewTokens: 1 + Math.floor(rng.next() * 48) }, signal);
}

describe('engine on demo-tiny', () => {
  before(async () => {
    model = await loadModel(modelDir('demo-tiny'), { intraOpThreads: 2 });
  });
  after(async () => model.release());

  it('gives every golden continuation, one request at a time', async () => {
    const engine = new Engine(model);
    for (const c of goldens.cases) {
      const result = await engine.generate(request(c.prompt_ids));
      assert.deepEqual(ids(result), c.greedy_ids, c.prompt);
      assert.equal(result.final.generatedText, c.greedy_text.replace(/<\|endoftext\|>|<\|im_end\|>/g, ''));
      const stopped = goldens.stop_ids.includes(c.greedy_ids.at(-1)!);
      assert.equal(result.final.details.finishReason, stopped ? 'eos_token' : 'length');
      assert.equal(result.final.details.generatedTokens, c.greedy_ids.length);
    }
  });

  it('gives the golden continuations while 15 others join and leave at random steps', async () => {
    const rng = new Rng(1234);
    for (const c of goldens.cases) {
      const engine = new Engine(model, { maxWaitingTokens: 2 });
      const fillers: Promise<unknown>[] = [];
      let submitted = 0;
      const submitFiller = () => {
        const controller = new AbortController();
        const pending = engine.generate(filler(rng, controller.signal)).catch((err: { errorType?: string }) => {
          assert.equal(err.errorType, 'cancelled');
        });
        fillers.push(pending);
        // A few leave early by cancellation rather than by finishing.
        if (rng.next() < 0.2) setImmediate(() => controller.abort());
        submitted++;
      };
      for (let i = 0; i < 3; i++) submitFiller();
      let widest = 0;
      engine.onStep = (s) => {
        widest = Math.max(widest, s.batchSize);
        if (submitted < 15 && rng.next() < 0.5) submitFiller();
      };
      const result = await engine.generate(request(c.prompt_ids));
      assert.ok(widest >= 4, `the golden request shared its batch (widest ${widest})`);
      while (submitted < 15) submitFiller();
      await Promise.all(fillers);
      assertGolden(ids(result), c, 'busy batch');
    }
  });

  it('gives a seeded sampling request the same tokens alone and in a busy batch', async () => {
    const params = { doSample: true, seed: 424242, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1 };
    const prompt = goldens.cases[0].prompt_ids;
    const alone = await new Engine(model).generate(request(prompt, params));

    const engine = new Engine(model, { maxWaitingTokens: 1 });
    const rng = new Rng(99);
    const others = Array.from({ length: 8 }, () => engine.generate(filler(rng)));
    let joined: Promise<GenerationResult> | null = null;
    engine.onStep = (s) => {
      if (!joined && s.phase === 'decode') joined = engine.generate(request(prompt, params));
    };
    await Promise.all(others);
    const busy = await joined!;
    assert.deepEqual(ids(busy), ids(alone));
    assert.equal(busy.final.details.seed, 424242);
    // Not greedy: sampling actually changed the output.
    assert.notDeepEqual(ids(alone), goldens.cases[0].greedy_ids);
  });

  it('stops on a stop sequence that spans two tokens', async () => {
    const c = goldens.cases.find((g) => g.greedy_ids.length > 4)!;
    const first = model.tokenizer.decode([c.greedy_ids[0]]);
    const second = model.tokenizer.decode([c.greedy_ids[1]]);
    assert.ok(first.length > 0 && second.length > 0);
    const stop = first.slice(-1) + second; // the last character of one token and the whole next one
    const result = await new Engine(model).generate(request(c.prompt_ids, { stop: [stop] }));
    assert.deepEqual(ids(result), c.greedy_ids.slice(0, 2));
    assert.equal(result.final.details.finishReason, 'stop_sequence');
    assert.equal(result.final.generatedText, first + second);
  });

  it('never holds more padded tokens than max_batch_total_tokens', async () => {
    const budget = 900;
    const engine = new Engine(model, { maxBatchTotalTokens: budget, maxBatchPrefillTokens: 256, maxWaitingTokens: 3 });
    const steps: StepStats[] = [];
    engine.onStep = (s) => {
      steps.push(s);
      assert.ok(s.paddedTokens <= budget, `padded ${s.paddedTokens} > ${budget} at step ${steps.length}`);
      assert.ok(s.projectedTokens <= budget, `projected ${s.projectedTokens} > ${budget} at step ${steps.length}`);
    };
    const rng = new Rng(7);
    const results: Promise<GenerationResult>[] = [];
    for (let i = 0; i < 12; i++) results.push(engine.generate(filler(rng)));
    let more = 28;
    const onStep = engine.onStep;
    engine.onStep = (s) => {
      onStep(s);
      if (more > 0 && rng.next() < 0.4) {
        more--;
        results.push(engine.generate(filler(rng)));
      }
    };
    // Results arrive as the run goes; wait until every submitted request has finished.
    for (let i = 0; i < results.length; i++) await results[i];
    assert.ok(steps.length > 20);
    assert.ok(Math.max(...steps.map((s) => s.batchSize)) > 1, 'requests were batched');
    assert.ok(Math.max(...steps.map((s) => s.paddedTokens)) > budget / 3, 'the budget was actually approached');
  });

  /** Submits a golden request, then two more when its first token comes out, that is during its prefill. */
  const longGoldens = () => goldens.cases.filter((g) => g.greedy_ids.length === goldens.max_new_tokens).slice(0, 3);

  async function arrivalsDuringPrefill(config: ConstructorParameters<typeof Engine>[1]) {
    const [a, b, c] = longGoldens();
    const engine = new Engine(model, config);
    const steps: StepStats[] = [];
    engine.onStep = (s) => steps.push(s);
    let late: Promise<GenerationResult>[] = [];
    const first = new Promise<void>((resolve) => {
      engine.submit(request(a.prompt_ids), (event) => {
        if (event.type === 'token' && event.index === 0) {
          late = [engine.generate(request(b.prompt_ids)), engine.generate(request(c.prompt_ids))];
        }
        if (event.type !== 'token') resolve();
      });
    });
    await first;
    const results = await Promise.all(late);
    assertGolden(ids(results[0]), b, 'second arrival');
    assertGolden(ids(results[1]), c, 'third arrival');
    return steps;
  }

  it('prefills requests that arrive during a prefill before the next decode step', async () => {
    const steps = await arrivalsDuringPrefill({});
    assert.deepEqual(
      steps.slice(0, 3).map((s) => [s.phase, s.joined, s.batchSize]),
      [
        ['prefill', 1, 1],
        ['prefill', 2, 3],
        ['decode', 0, 3],
      ],
    );
  });

  it('runs a decode step between prefills once they have used max_batch_prefill_tokens', async () => {
    const [a, b, c] = longGoldens().map((g) => g.prompt_ids.length);
    // Room for the first prompt, then for the next two together, but not for the first and the second.
    const budget = Math.max(a, 2 * Math.max(b, c));
    assert.ok(budget < a + b, 'the goldens’ prompt lengths allow this test');
    const steps = await arrivalsDuringPrefill({ maxBatchPrefillTokens: budget });
    assert.deepEqual(
      steps.slice(0, 3).map((s) => [s.phase, s.joined, s.batchSize]),
      [
        ['prefill', 1, 1],
        ['decode', 0, 1],
        ['prefill', 2, 3],
      ],
    );
  });

  it('chains at most MAX_CHAINED_PREFILLS prefills between decode steps', async () => {
    const prompts = longGoldens().map((g) => g.prompt_ids);
    const engine = new Engine(model);
    const steps: StepStats[] = [];
    engine.onStep = (s) => steps.push(s);
    const count = MAX_CHAINED_PREFILLS + 2;
    const done: Promise<void>[] = [];
    // Each request arrives during the previous one's prefill: a trickle that would chain prefills without end.
    const submit = (i: number): void => {
      done.push(
        new Promise<void>((resolve, reject) => {
          engine.submit(request(prompts[i % prompts.length]), (event) => {
            if (event.type === 'token' && event.index === 0 && i + 1 < count) submit(i + 1);
            if (event.type === 'final') resolve();
            if (event.type === 'error') reject(new Error(event.message));
          });
        }),
      );
    };
    submit(0);
    for (let i = 0; i < done.length; i++) await done[i];
    assert.equal(done.length, count);
    assert.deepEqual(
      steps.slice(0, MAX_CHAINED_PREFILLS + 1).map((s) => s.phase),
      [...Array<string>(MAX_CHAINED_PREFILLS).fill('prefill'), 'decode'],
    );
    assert.equal(steps[MAX_CHAINED_PREFILLS - 1].batchSize, MAX_CHAINED_PREFILLS);
  });

  it('counts only the rows that were decoding against waiting_served_ratio when prefills follow one another', async () => {
    const prompts = longGoldens().map((g) => g.prompt_ids);
    const engine = new Engine(model, { waitingServedRatio: 0.5 });
    const steps: StepStats[] = [];
    const all: Promise<GenerationResult>[] = [];
    const more = (n: number) => {
      for (let i = 0; i < n; i++) all.push(engine.generate(request(prompts[i % prompts.length])));
    };
    // 4 rows decode; at their third token 4 more arrive (4 >= 0.5 × 4: they are prefilled), and while those
    // prefill, 2 more: 2 >= 0.5 × the 4 rows that were decoding, though fewer than 0.5 × the 8 rows now running.
    let stage = 0;
    engine.onStep = (s) => {
      steps.push(s);
      if (stage === 0 && s.phase === 'decode' && s.batchSize === 4) {
        stage = 1;
        more(4);
      }
    };
    const first = engine.submit.bind(engine);
    engine.submit = (req, sink) =>
      first(req, (event) => {
        if (stage === 1 && event.type === 'token' && event.index === 0) {
          stage = 2;
          more(2);
        }
        sink(event);
      });
    more(4);
    for (let i = 0; i < all.length; i++) await all[i]; // requests are added as the run goes
    assert.equal(all.length, 10);
    const at = steps.findIndex((s) => s.phase === 'prefill' && s.joined === 4 && s.batchSize === 8);
    assert.ok(at > 0, 'the second group joined 4 decoding rows');
    assert.deepEqual(
      steps.slice(at, at + 3).map((s) => [s.phase, s.joined, s.batchSize]),
      [
        ['prefill', 4, 8],
        ['prefill', 2, 10],
        ['decode', 0, 10],
      ],
    );
  });

  it('frees a cancelled request’s budget within one step', async () => {
    const c = goldens.cases.find((g) => g.greedy_ids.length === goldens.max_new_tokens)!;
    const engine = new Engine(model);
    const steps: StepStats[] = [];
    engine.onStep = (s) => steps.push(s);
    const controller = new AbortController();
    let cancelledAtStep = -1;
    const events: EngineEvent[] = [];
    const others = [engine.generate(request(c.prompt_ids)), engine.generate(request(c.prompt_ids))];
    const cancelled = new Promise<void>((resolve) => {
      engine.submit(request(c.prompt_ids, {}, controller.signal), (event) => {
        events.push(event);
        if (event.type === 'token' && event.index === 3) {
          controller.abort();
          cancelledAtStep = steps.length;
        }
        if (event.type !== 'token') resolve();
      });
    });
    await cancelled;
    await Promise.all(others);
    const before = steps[cancelledAtStep];
    const next = steps[cancelledAtStep + 1];
    assert.equal(before.batchSize, 3);
    assert.equal(next.batchSize, 2, 'the cancelled row is gone at the next step');
    assert.ok(next.projectedTokens < before.projectedTokens, 'its budget is freed');
    assert.deepEqual(
      events.map((e) => e.type),
      ['token', 'token', 'token', 'token', 'error'],
    );
    assert.equal((events.at(-1) as { errorType: string }).errorType, 'cancelled');
  });

  it('drops a cancelled waiting request before it costs compute', async () => {
    const engine = new Engine(model);
    const controller = new AbortController();
    controller.abort();
    const steps: StepStats[] = [];
    engine.onStep = (s) => steps.push(s);
    await assert.rejects(engine.generate(request([5, 6, 7], {}, controller.signal)), {
      errorType: 'cancelled',
    } as object);
    assert.equal(steps.length, 0);
  });

  it('streams multi-byte text as whole characters that concatenate to the final text', async () => {
    const prompt = model.tokenizer.encode('Ünïcödé: 🌍🚀 世界和平 — naïve café 😀');
    for (const params of [
      {},
      { doSample: true, seed: 5, temperature: 3 },
      { doSample: true, seed: 11, temperature: 5 },
    ]) {
      const result = await new Engine(model).generate(request(prompt, { maxNewTokens: 48, ...params }));
      const chunks = result.tokens.filter((t) => !t.token.special).map((t) => t.token.text);
      for (const chunk of chunks) assert.ok(chunk.isWellFormed(), `chunk ${JSON.stringify(chunk)} splits a character`);
      assert.equal(chunks.join(''), result.final.generatedText);
    }
  });

  it('runs best_of as several sampled sequences and returns the most likely', async () => {
    const prompt = goldens.cases[2].prompt_ids;
    const result = await new Engine(model).generate(
      request(prompt, { doSample: true, bestOf: 2, temperature: 1.2, maxNewTokens: 12 }),
    );
    const others = result.final.details.bestOfSequences!;
    assert.equal(others.length, 1);
    const score = (tokens: { logprob: number }[]) => tokens.reduce((s, t) => s + t.logprob, 0);
    assert.ok(score(result.final.details.tokens) >= score(others[0].tokens));
  });

  it('reports decoder input details and top tokens', async () => {
    const c = goldens.cases[0];
    const result = await new Engine(model).generate(
      request(c.prompt_ids, { decoderInputDetails: true, topNTokens: 3, maxNewTokens: 4 }),
    );
    const { prefill, topTokens, tokens } = result.final.details;
    assert.deepEqual(
      prefill.map((p) => p.id),
      c.prompt_ids,
    );
    assert.equal(prefill[0].logprob, null);
    assert.ok(prefill.slice(1).every((p) => p.logprob !== null && p.logprob <= 0));
    assert.equal(topTokens.length, 4);
    for (let i = 0; i < 4; i++) {
      assert.equal(topTokens[i].length, 3);
      // Greedy: the chosen token is the most likely one, with the same logprob.
      assert.equal(topTokens[i][0].id, tokens[i].id);
      assert.ok(Math.abs(topTokens[i][0].logprob - tokens[i].logprob) < 1e-5);
      assert.ok(topTokens[i][0].logprob >= topTokens[i][1].logprob);
    }
  });
});

describe('engine on demo-tiny, the export as it is (padded cache)', () => {
  let exported: LoadedModel;
  before(async () => {
    exported = await loadModel(modelDir('demo-tiny'), { intraOpThreads: 2, fuseAttention: false });
  });
  after(async () => exported.release());

  it('gives the golden continuations alone and all batched together', async () => {
    assert.equal(exported.session.signature.layout, 'padded');
    const engine = new Engine(exported);
    for (const c of goldens.cases)
      assert.deepEqual(ids(await engine.generate(request(c.prompt_ids))), c.greedy_ids, c.prompt);
    const batched = await Promise.all(goldens.cases.map((c) => engine.generate(request(c.prompt_ids))));
    batched.forEach((result, i) => assertGolden(ids(result), goldens.cases[i], 'batched'));
  });
});
