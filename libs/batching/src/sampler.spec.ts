import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultParameters } from './parameters';
import { createSamplerState, observeToken, Sampler, topIndices } from './sampler';
import type { GenerationParameters } from './types';

const probs = [0.5, 0.3, 0.15, 0.05];
const logits = () => Float32Array.from(probs.map(Math.log));

function frequencies(params: Partial<GenerationParameters>, draws = 20000): number[] {
  const p = defaultParameters({ doSample: true, seed: 1, ...params });
  const sampler = new Sampler(probs.length);
  const state = createSamplerState(p, []);
  const counts = new Array(probs.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampler.sample(logits(), p, state).id]++;
  return counts.map((c) => c / draws);
}

function assertClose(actual: number[], expected: number[], tolerance = 0.015): void {
  actual.forEach((a, i) =>
    assert.ok(Math.abs(a - expected[i]) <= tolerance, `p[${i}] = ${a}, expected ${expected[i]}`),
  );
}

describe('sampler', () => {
  it('greedy takes the argmax with its log-softmax logprob', () => {
    const result = new Sampler(4).sample(
      logits(),
      defaultParameters({ topNTokens: 2 }),
      createSamplerState(defaultParameters(), []),
    );
    assert.equal(result.id, 0);
    assert.ok(Math.abs(result.logprob - Math.log(0.5)) < 1e-6);
    assert.deepEqual(
      result.top.map((t) => t.id),
      [0, 1],
    );
    assert.ok(Math.abs(result.top[1].logprob - Math.log(0.3)) < 1e-6);
  });

  it('samples in proportion to the probabilities', () => {
    assertClose(frequencies({}), probs);
  });

  it('applies temperature', () => {
    const sharpened = probs.map((p) => p ** 2);
    const total = sharpened.reduce((a, b) => a + b);
    assertClose(
      frequencies({ temperature: 0.5 }),
      sharpened.map((p) => p / total),
    );
  });

  it('keeps only the top k', () => {
    assertClose(frequencies({ topK: 2 }), [0.625, 0.375, 0, 0]);
  });

  it('keeps the smallest set whose mass reaches top_p', () => {
    assertClose(frequencies({ topP: 0.75 }), [0.625, 0.375, 0, 0]);
    assertClose(frequencies({ topP: 0.9 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
  });

  it('keeps the locally typical tokens for typical_p', () => {
    const freq = frequencies({ typicalP: 0.25 });
    assert.equal(freq.filter((f) => f > 0).length, 1, 'one token closest to the entropy');
  });

  it('gives the chosen token’s logprob under the truncated distribution', () => {
    const p = defaultParameters({ doSample: true, seed: 3, topK: 2 });
    const result = new Sampler(4).sample(logits(), p, createSamplerState(p, []));
    assert.ok(Math.abs(result.logprob - Math.log(probs[result.id] / 0.8)) < 1e-6);
  });

  it('penalises repeated tokens (repetition_penalty) and frequent ones (frequency_penalty)', () => {
    const rep = defaultParameters({ repetitionPenalty: 2 });
    const repState = createSamplerState(rep, [0]);
    const values = Float32Array.from([2, 1.5, -1, -3]);
    const chosen = new Sampler(4).sample(values, rep, repState);
    assert.equal(chosen.id, 1, 'token 0 (seen in the prompt) is divided by 2 and loses');
    assert.equal(values[0], 1);

    const freq = defaultParameters({ frequencyPenalty: 1 });
    const freqState = createSamplerState(freq, []);
    observeToken(freqState, 0);
    observeToken(freqState, 0);
    const values2 = Float32Array.from([2, 1.5, -1, -3]);
    assert.equal(new Sampler(4).sample(values2, freq, freqState).id, 1);
    assert.equal(values2[0], 0, 'two occurrences subtract 2');
  });

  it('lowers every token already generated once by presence_penalty, however often it came', () => {
    const p = defaultParameters({ presencePenalty: 0.5 });
    const state = createSamplerState(p, [1]);
    observeToken(state, 0);
    observeToken(state, 0);
    observeToken(state, 2);
    const values = Float32Array.from([2, 1.5, -1, -3]);
    new Sampler(4).sample(values, p, state);
    assert.deepEqual([...values], [1.5, 1.5, -1.5, -3], 'tokens 0 and 2 lose 0.5 once; the prompt token 1 does not');
  });

  it('adds logit_bias, bans a token at -100 and forces one at 100, greedy or sampled', () => {
    const sampler = new Sampler(4);
    const greedy = defaultParameters({ logitBias: [[0, -100]] });
    assert.equal(sampler.sample(logits(), greedy, createSamplerState(greedy, [])).id, 1, 'the argmax is banned');
    const shifted = defaultParameters({ logitBias: [[3, 5]] });
    assert.equal(sampler.sample(logits(), shifted, createSamplerState(shifted, [])).id, 3, '+5 lifts token 3 first');
    const banned = frequencies({ logitBias: [[0, -100]] });
    assert.equal(banned[0], 0, 'a banned token is never drawn');
    assertClose(banned, [0, 0.6, 0.3, 0.1]);
    assert.deepEqual(frequencies({ logitBias: [[2, 100]] }, 2000), [0, 0, 1, 0], 'a forced token is always drawn');
  });

  it('draws the same tokens for the same seed', () => {
    const draw = (seed: number) => {
      const p = defaultParameters({ doSample: true, seed });
      const state = createSamplerState(p, []);
      const sampler = new Sampler(4);
      return Array.from({ length: 50 }, () => sampler.sample(logits(), p, state).id);
    };
    assert.deepEqual(draw(17), draw(17));
    assert.notDeepEqual(draw(17), draw(18));
  });

  it('never gives a NaN or infinite logprob, whatever the parameters that reach it', () => {
    // Validation refuses the first two; the sampler clamps them too, for a job it gets from elsewhere.
    const extremes: Partial<GenerationParameters>[] = [
      { doSample: true, temperature: 5e-324 },
      { repetitionPenalty: 1e-300 },
      { doSample: true, repetitionPenalty: 1e-300 },
      { repetitionPenalty: 1e300 },
      { doSample: true, repetitionPenalty: 1e300, temperature: 1e-4 },
      { doSample: true, temperature: 1e-4 },
      { doSample: true, temperature: 1e300 },
      { doSample: true, topP: 5e-324 },
      { doSample: true, typicalP: 5e-324 },
      { doSample: true, topP: 5e-324, typicalP: 5e-324, topK: 1 },
      { frequencyPenalty: 2 },
    ];
    // every token already seen, all logits negative: a huge penalty takes each one past float32's range
    const rows = [Float32Array.from([-1, -2, -30, -40]), logits(), Float32Array.from([50, 1, -3, -80])];
    for (const extra of extremes) {
      for (const row of rows) {
        const p = defaultParameters({ seed: 5, topNTokens: 4, ...extra });
        const state = createSamplerState(p, [0, 1, 2, 3]);
        observeToken(state, 0);
        const result = new Sampler(4).sample(Float32Array.from(row), p, state);
        const what = `${JSON.stringify(extra)} on [${row.join(', ')}]`;
        assert.ok(result.id >= 0 && result.id < 4, `${what}: id ${result.id}`);
        for (const t of [result, ...result.top]) assert.ok(Number.isFinite(t.logprob), `${what}: ${t.logprob}`);
        assert.equal(result.top.length, 4, what);
      }
    }
  });

  it('ranks the top indices', () => {
    assert.deepEqual(topIndices(Float32Array.from([3, 9, 1, 7, 9.5]), 3), [4, 1, 3]);
  });
});
