/**
 * Quantized and float16 models on the platform as `npm start` starts it: the default model quantized to q8 by the
 * launcher's `--quantize`, a q4 model registered with `quantize` through the admin API, and an fp16 export made by
 * the converter. Every route answers with the tokens the same model gives straight from its session (computed here,
 * independently of the engine and the platform), and `/metrics` and `GET /admin/workers` say what each model is.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { LoadedModel, loadModel, Quantize } from '@switchyard/models';
import { greedyIds } from './support/greedy';
import { waitFor } from './support/platform';
import { LaunchedPlatform } from './support/launched';
import { loadGoldens, modelDir } from './support/repo';
import { makeVariants } from './support/variants';

const run = randomUUID().slice(0, 8);
const cacheDir = mkdtempSync(join(tmpdir(), 'switchyard-cache-'));
const variants = makeVariants('demo-tiny', ['fp16']);
const platform = new LaunchedPlatform();
const goldens = loadGoldens('demo-small');
const MAX_NEW = 16;
const q4Id = `small-q4-${run}`;
const fp16Id = `tiny-fp16-${run}`;

/** Greedy ids straight on a session (no engine, no batch, no platform), and the model's own decoding of them. */
async function reference(
  dir: string,
  quantize: Quantize,
  prompts: string[],
): Promise<{ ids: number[][]; text: (ids: number[]) => string }> {
  const model: LoadedModel = await loadModel(dir, { quantize, cacheDir, intraOpThreads: 1 });
  const stop = model.config.eosTokenIds;
  const out: number[][] = [];
  for (const prompt of prompts) {
    const ids = model.tokenizer.encode(prompt);
    const generated = await greedyIds(model, ids, MAX_NEW, stop);
    out.push(generated);
  }
  await model.release();
  return { ids: out, text: (ids) => model.tokenizer.decode(ids, true) };
}

async function call(method: string, path: string, body?: unknown) {
  const res = await fetch(`${platform.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...platform.auth() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // SSE
  }
  return { res, text, json };
}

const cases = goldens.cases.slice(0, 3);
const chat = goldens.cases.find((c) => c.prompt.startsWith('<|im_start|>user\n'))!;
const userMessage = /^<\|im_start\|>user\n([\s\S]*)<\|im_end\|>\n<\|im_start\|>assistant\n$/.exec(chat.prompt)![1];

before(async () => {
  await platform.start(['--quantize', 'q8', '--cache-dir', cacheDir]);
  const q4 = await call('POST', '/admin/models', { id: q4Id, path: modelDir('demo-small'), quantize: 'q4' });
  assert.equal(q4.res.status, 201, q4.text);
  // quantize none: the workers' --quantize (q8, from the launcher) would apply otherwise
  const fp16 = await call('POST', '/admin/models', { id: fp16Id, path: variants.dir('fp16'), quantize: 'none' });
  assert.equal(fp16.res.status, 201, fp16.text);
});

after(async () => {
  for (const id of [q4Id, fp16Id]) await call('DELETE', `/admin/models/${id}`);
  assert.equal(await platform.stop(), 0);
  variants.remove();
  rmSync(cacheDir, { recursive: true, force: true });
});

for (const [label, model, dir, quantize, dtype] of [
  ['q8 at load (the launcher)', 'demo-small', modelDir('demo-small'), 'q8', 'q8'],
  ['q4 at load (the registry)', q4Id, modelDir('demo-small'), 'q4', 'q4'],
  ['fp16 export', fp16Id, variants.dir('fp16'), 'none', 'fp16'],
] as const) {
  describe(`${label}: every route`, () => {
    let expected: number[][];
    let chatExpected: number[];
    let text: (ids: number[]) => string;
    const openai = () => new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: platform.adminKey, maxRetries: 0 });

    before(async () => {
      const ref = await reference(dir, quantize, [chat.prompt, ...cases.map((c) => c.prompt)]);
      [chatExpected, ...expected] = ref.ids;
      text = ref.text;
    });

    it('POST /generate and POST / give the reference tokens', async () => {
      for (const [i, c] of cases.entries()) {
        const { res, json } = await call('POST', '/generate', {
          model,
          inputs: c.prompt,
          parameters: { max_new_tokens: MAX_NEW, details: true },
        });
        assert.equal(res.status, 200, JSON.stringify(json));
        assert.equal(res.headers.get('x-served-model'), model);
        const ids = (json.details as { tokens: { id: number }[] }).tokens.map((t) => t.id);
        assert.deepEqual(ids, expected[i], c.prompt);
        const compat = await call('POST', '/', { model, inputs: c.prompt, parameters: { max_new_tokens: MAX_NEW } });
        assert.equal((compat.json as unknown as { generated_text: string }[])[0].generated_text, text(expected[i]));
      }
    });

    it('POST /generate_stream streams them', async () => {
      const { text: body } = await call('POST', '/generate_stream', {
        model,
        inputs: cases[0].prompt,
        parameters: { max_new_tokens: MAX_NEW },
      });
      const events = body
        .split('\n\n')
        .filter(Boolean)
        .map((e) => JSON.parse(e.slice('data:'.length)) as { token: { id: number } });
      assert.deepEqual(
        events.map((e) => e.token.id),
        expected[0],
      );
    });

    it('/v1/chat/completions and /v1/completions give them, streamed or not', async () => {
      const out = await openai().chat.completions.create({
        model,
        messages: [{ role: 'user', content: userMessage }],
        temperature: 0,
        max_tokens: MAX_NEW,
      });
      assert.equal(out.model, model);
      assert.equal(out.choices[0].message.content, text(chatExpected));
      const stream = await openai().chat.completions.create({
        model,
        messages: [{ role: 'user', content: userMessage }],
        temperature: 0,
        max_tokens: MAX_NEW,
        stream: true,
      });
      let streamed = '';
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
      assert.equal(streamed, text(chatExpected));
      const completion = await openai().completions.create({
        model,
        prompt: cases[1].prompt,
        temperature: 0,
        max_tokens: MAX_NEW,
      });
      assert.equal(completion.choices[0].text, text(expected[1]));
    });

    it('is reported as it is served: /metrics and GET /admin/workers', async () => {
      const labels = { model, dtype, quantize, attention: 'fused' };
      // the workers publish their metrics with each heartbeat
      await waitFor(
        `switchyard_model_info ${JSON.stringify(labels)}`,
        async () => (await platform.metric('switchyard_model_info', labels)) === 1,
      );
      // the API reads the heartbeats in the background: wait for the one that has the model loaded
      const entry = await waitFor(`${model} loaded in GET /admin/workers`, async () => {
        const { json } = await call('GET', '/admin/workers');
        const models = (json as unknown as { models: Record<string, unknown>[] }[]).flatMap((w) => w.models);
        return models.find((m) => m.id === model && m.state === 'loaded' && m.dtype !== null);
      });
      assert.deepEqual(
        [entry.dtype, entry.quantize, entry.attention, entry.kv_dtype],
        [dtype, quantize, 'fused', dtype === 'fp16' ? 'float16' : 'float32'],
      );
    });
  });
}

describe('the registry', () => {
  it("keeps each model's quantize, and refuses what cannot run with a clear 422", async () => {
    const { json } = await call('GET', `/admin/models/${q4Id}`);
    assert.equal(json.quantize, 'q4');
    const gptq = await call('PATCH', `/admin/models/${q4Id}`, { quantize: 'gptq' });
    assert.equal(gptq.res.status, 422);
    assert.match(String((gptq.json.error as string) ?? gptq.text), /TGI's methods .* q8 or q4/);
    const number = await call('PATCH', `/admin/models/${q4Id}`, { quantize: 4 });
    assert.equal(number.res.status, 422);
    // a change of quantization reaches the workers at the model's next load
    const changed = await call('PATCH', `/admin/models/${q4Id}`, { quantize: 'q8' });
    assert.equal(changed.res.status, 200, changed.text);
    assert.equal(changed.json.quantize, 'q8');
    const unload = await call('POST', `/admin/models/${q4Id}/unload`);
    assert.equal(unload.res.status, 202);
    await waitFor('the q4 model to unload', async () => {
      const { json: workers } = await call('GET', '/admin/workers');
      const models = (workers as unknown as { models: { id: string }[] }[]).flatMap((w) => w.models);
      return !models.some((m) => m.id === q4Id);
    });
    const { res } = await call('POST', '/generate', {
      model: q4Id,
      inputs: 'Love is',
      parameters: { max_new_tokens: 2 },
    });
    assert.equal(res.status, 200);
    await waitFor(
      'the reloaded model in /metrics',
      async () => (await platform.metric('switchyard_model_info', { model: q4Id, quantize: 'q8', dtype: 'q8' })) === 1,
    );
    assert.equal(
      await platform.metric('switchyard_model_info', { model: q4Id, quantize: 'q4' }),
      0,
      'the old series went with the unload',
    );
  });
});
