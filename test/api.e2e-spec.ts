/**
 * The platform as `npm start` starts it (launcher, API, a worker, Redis, Postgres, demo-small), driven by the
 * clients users have: `@huggingface/inference` on the TGI routes, the `openai` package on the OpenAI routes,
 * and plain HTTP for the error cases.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { InferenceClient } from '@huggingface/inference';
import Ajv from 'ajv';
import OpenAI from 'openai';
import { Redis } from 'ioredis';
import { decodeInboxEntry, RedisNames } from '@switchyard/protocol';
import { loadTokenizer } from '@switchyard/models';
import { waitFor } from './support/platform';
import { LaunchedPlatform } from './support/launched';
import { loadGoldens, modelDir, REPO_ROOT } from './support/repo';

const goldens = loadGoldens('demo-small');
const tokenizer = loadTokenizer(modelDir('demo-small'));
/** The golden continuation as text, without the special tokens a chat answer leaves out. */
const goldenText = (ids: number[]) => tokenizer.decode(ids, true);
const CHAT_CASES = goldens.cases.filter((c) => c.prompt.startsWith('<|im_start|>user\n'));
/** The user's message inside a ChatML golden prompt. */
const userMessage = (prompt: string) =>
  /^<\|im_start\|>user\n([\s\S]*)<\|im_end\|>\n<\|im_start\|>assistant\n$/.exec(prompt)![1];

const LONG_PROMPT = '<|im_start|>user\nTell me a fortune.<|im_end|>\n<|im_start|>assistant\n';

const platform = new LaunchedPlatform();
const MAX_CONCURRENT = 6;

before(() => platform.start(['--max-concurrent-requests', String(MAX_CONCURRENT)]));
after(async () => {
  assert.equal(await platform.stop(), 0, 'Ctrl-C stops the platform cleanly');
});

const post = (path: string, body: unknown, headers: Record<string, string> = {}) => platform.post(path, body, headers);

describe('TGI routes with @huggingface/inference', () => {
  const client = () => new InferenceClient(platform.adminKey, { endpointUrl: platform.url });

  // Given an endpoint URL, the client sends text generation to /v1/completions (TGI's OpenAI route), with the
  // TGI parameters as fields, and returns only the text: it is compared with the golden ids, decoded.
  it('textGeneration gives the golden continuation for every case', async () => {
    for (const c of goldens.cases) {
      const out = await client().textGeneration({
        inputs: c.prompt,
        parameters: { max_new_tokens: goldens.max_new_tokens, do_sample: false },
      });
      assert.equal(out.generated_text, goldenText(c.greedy_ids), JSON.stringify(c.prompt));
    }
  });

  it('textGenerationStream streams the same continuation, chunk by chunk', async () => {
    for (const c of goldens.cases.slice(0, 4)) {
      let text = '';
      let chunks = 0;
      for await (const event of client().textGenerationStream({
        inputs: c.prompt,
        parameters: { max_new_tokens: goldens.max_new_tokens, do_sample: false },
      })) {
        const choice = (event as unknown as { choices: { text: string }[] }).choices[0];
        text += choice?.text ?? '';
        chunks++;
      }
      assert.equal(text, goldenText(c.greedy_ids));
      assert.ok(chunks >= 2, 'streamed in several chunks');
    }
  });

  it('/generate and /generate_stream give the golden ids, and the stream concatenates to generated_text', async () => {
    for (const c of goldens.cases) {
      const { json } = await post('/generate', {
        inputs: c.prompt,
        parameters: { max_new_tokens: goldens.max_new_tokens, details: true },
      });
      const tokens = (json.details as { tokens: { id: number }[] }).tokens;
      assert.deepEqual(
        tokens.map((t) => t.id),
        c.greedy_ids,
      );
      const streamed = await post('/generate_stream', {
        inputs: c.prompt,
        parameters: { max_new_tokens: goldens.max_new_tokens },
      });
      const events = streamed.text
        .split('\n\n')
        .filter(Boolean)
        .map(
          (e) =>
            JSON.parse(e.slice('data:'.length)) as {
              token: { id: number; text: string; special: boolean };
              generated_text: string | null;
            },
        );
      assert.deepEqual(
        events.map((e) => e.token.id),
        c.greedy_ids,
      );
      const text = events.map((e) => (e.token.special ? '' : e.token.text)).join('');
      assert.equal(events.at(-1)!.generated_text, text);
      assert.ok(events.slice(0, -1).every((e) => e.generated_text === null));
    }
  });

  it('answers /generate with TGI headers, details and the served model', async () => {
    const { res, json } = await post('/generate', {
      inputs: goldens.cases[0].prompt,
      parameters: { max_new_tokens: 5, details: true, decoder_input_details: true, top_n_tokens: 2 },
    });
    assert.equal(res.status, 200);
    for (const h of ['x-compute-time', 'x-queue-time', 'x-inference-time', 'x-time-per-token', 'x-request-id']) {
      assert.ok(res.headers.get(h), h);
    }
    assert.equal(res.headers.get('x-served-model'), 'demo-small');
    assert.equal(res.headers.get('x-prompt-tokens'), String(goldens.cases[0].prompt_ids.length));
    assert.equal(res.headers.get('x-generated-tokens'), '5');
    const details = json.details as Record<string, unknown[]> & { generated_tokens: number; finish_reason: string };
    assert.equal(details.finish_reason, 'length');
    assert.equal(details.prefill.length, goldens.cases[0].prompt_ids.length);
    assert.equal(details.top_tokens.length, 5);
    assert.ok((details.top_tokens[0] as unknown[]).length === 2);
  });

  it('return_full_text puts the prompt before the generated text once, streamed or not', async () => {
    const c = goldens.cases[1];
    const parameters = { max_new_tokens: 8, do_sample: false };
    const plain = await post('/generate', { inputs: c.prompt, parameters });
    const full = await post('/generate', { inputs: c.prompt, parameters: { ...parameters, return_full_text: true } });
    assert.equal(full.json.generated_text, c.prompt + (plain.json.generated_text as string));
    const streamed = await post('/generate_stream', {
      inputs: c.prompt,
      parameters: { ...parameters, return_full_text: true },
    });
    const last = JSON.parse(streamed.text.trim().split('\n\n').at(-1)!.slice('data:'.length)) as {
      generated_text: string;
    };
    assert.equal(last.generated_text, full.json.generated_text);
  });

  it('POST / answers an array, or SSE when stream is true', async () => {
    const plain = await post('/', { inputs: 'Love is', parameters: { max_new_tokens: 3 } });
    assert.ok(
      Array.isArray(plain.json) &&
        typeof (plain.json as unknown as { generated_text: string }[])[0].generated_text === 'string',
    );
    const streamed = await post('/', { inputs: 'Love is', parameters: { max_new_tokens: 3 }, stream: true });
    assert.match(streamed.res.headers.get('content-type') ?? '', /text\/event-stream/);
    const events = streamed.text.split('\n\n').filter(Boolean);
    assert.equal(events.length, 3);
    assert.ok(events.every((e) => e.startsWith('data:{')));
    assert.ok(!streamed.text.includes('[DONE]'));
  });

  it('a seed gives the same sampled output twice', async () => {
    const body = {
      inputs: 'Once upon a time',
      parameters: { max_new_tokens: 24, do_sample: true, seed: 7, top_k: 50 },
    };
    const a = await post('/generate', body);
    const b = await post('/generate', body);
    assert.equal(a.res.status, 200);
    assert.equal(a.json.generated_text, b.json.generated_text);
    const other = await post('/generate', { ...body, parameters: { ...body.parameters, seed: 8 } });
    assert.notEqual(other.json.generated_text, a.json.generated_text);
  });

  it('serves the README example as written', async () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const command = /curl 127\.0\.0\.1:8080\/generate [^\n`]+/.exec(readme)?.[0];
    assert.ok(command, 'the README shows the curl example');
    // run as a user would paste it into a shell, with the key the README tells them to export
    const { stdout } = await promisify(execFile)(
      'sh',
      ['-c', command.replace('127.0.0.1:8080', `127.0.0.1:${platform.port}`).replace(/^curl /, 'curl -s ')],
      { env: { ...process.env, SWITCHYARD_KEY: platform.adminKey } },
    );
    const body = JSON.parse(stdout) as { generated_text: string };
    assert.equal(typeof body.generated_text, 'string');
    assert.ok(body.generated_text.length > 0);
  });
});

describe('TGI grammars: outputs valid by construction', () => {
  const CHAT = '<|im_start|>user\nDescribe a person as JSON.<|im_end|>\n<|im_start|>assistant\n';
  const PERSON = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 20 },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      pets: { type: 'array', items: { enum: ['cat', 'dog', 'fish'] }, minItems: 1, maxItems: 3 },
    },
    required: ['name', 'age', 'pets'],
  };
  const sampledWith = (grammar: unknown, seed: number) => ({
    inputs: CHAT,
    parameters: { grammar, do_sample: true, temperature: 1, seed, max_new_tokens: 80 },
  });
  /** The text of a /generate_stream answer, token by token, and its final generated_text. */
  const streamedText = (sse: string) => {
    const events = sse
      .split('\n\n')
      .filter(Boolean)
      .map((e) => JSON.parse(e.slice('data:'.length)) as { token: { text: string }; generated_text: string | null });
    return { joined: events.map((e) => e.token.text).join(''), final: events.at(-1)!.generated_text };
  };

  it('a regex grammar on /generate: every sampled output matches it in full, streamed or not', async () => {
    const date = String.raw`(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])`;
    const full = new RegExp(`^${date}$`, 'u');
    for (let seed = 0; seed < 6; seed++) {
      const body = sampledWith({ type: 'regex', value: date }, seed);
      const { res, json } = await post('/generate', body);
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.match(json.generated_text as string, full);
      const streamed = streamedText((await post('/generate_stream', body)).text);
      assert.equal(streamed.joined, streamed.final);
      assert.match(streamed.final!, full);
    }
  });

  it('a JSON Schema grammar: every sampled output parses and validates with ajv, streamed or not', async () => {
    const validate = new Ajv().compile(PERSON);
    for (let seed = 0; seed < 6; seed++) {
      const body = sampledWith({ type: 'json', value: PERSON }, seed);
      const { res, json } = await post('/generate', body);
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.ok(validate(JSON.parse(json.generated_text as string)), json.generated_text as string);
      const streamed = streamedText((await post('/generate_stream', body)).text);
      assert.ok(validate(JSON.parse(streamed.joined)), streamed.joined);
    }
  });

  it('@huggingface/inference sends grammar to /v1/completions beside the OpenAI fields, and it is honoured', async () => {
    const client = new InferenceClient(platform.adminKey, { endpointUrl: platform.url });
    const validate = new Ajv().compile(PERSON);
    const out = await client.textGeneration({
      inputs: CHAT,
      parameters: { grammar: { type: 'json', value: PERSON }, max_new_tokens: 80, do_sample: true, seed: 5 },
    });
    assert.ok(validate(JSON.parse(out.generated_text)), out.generated_text);
  });

  it('refuses a grammar it cannot honour with a 422 naming why', async () => {
    const cases: [unknown, RegExp][] = [
      [{ type: 'json', value: { type: 'string', pattern: '^a' } }, /`pattern` at # is not supported/],
      [
        { type: 'json', value: { $defs: { n: { type: 'array', items: { $ref: '#/$defs/n' } } }, $ref: '#/$defs/n' } },
        /recursive/,
      ],
      [{ type: 'regex', value: '[a-' }, /the regex does not compile/],
      [{ type: 'regex', value: '(a+)\\1' }, /backreferences/],
      [{ type: 'regex', value: 'x'.repeat(70_000) }, /`grammar` is too large/],
      [{ type: 'regex', value: '(?:a|b)*a(?:a|b){20}' }, /the grammar is too complex/],
      [{ type: 'xml', value: '<a/>' }, /`grammar` must be/],
    ];
    for (const [grammar, message] of cases) {
      const { res, json } = await post('/generate', { inputs: CHAT, parameters: { grammar, max_new_tokens: 8 } });
      assert.equal(res.status, 422, JSON.stringify(grammar).slice(0, 80));
      assert.equal(json.error_type, 'validation');
      assert.match(json.error as string, message);
    }
  });
});

describe('OpenAI routes with the openai package', () => {
  const client = () => new OpenAI({ baseURL: `${platform.url}/v1`, apiKey: platform.adminKey, maxRetries: 0 });

  it('chat.completions.create gives the golden text for the chat goldens', async () => {
    assert.ok(CHAT_CASES.length > 0);
    for (const c of CHAT_CASES) {
      const out = await client().chat.completions.create({
        model: 'demo-small',
        messages: [{ role: 'user', content: userMessage(c.prompt) }],
        temperature: 0,
        max_tokens: goldens.max_new_tokens,
      });
      assert.equal(out.model, 'demo-small');
      assert.equal(out.choices[0].message.content, goldenText(c.greedy_ids));
      assert.equal(out.usage?.prompt_tokens, c.prompt_ids.length);
      assert.equal(out.usage?.completion_tokens, c.greedy_ids.length);
    }
  });

  it('streams the same text, ends with [DONE] and reports usage when asked', async () => {
    for (const c of CHAT_CASES) {
      const stream = await client().chat.completions.create({
        model: 'demo-small',
        messages: [{ role: 'user', content: userMessage(c.prompt) }],
        temperature: 0,
        max_tokens: goldens.max_new_tokens,
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage: OpenAI.CompletionUsage | null | undefined = null;
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        usage = chunk.usage ?? usage;
      }
      assert.equal(text, goldenText(c.greedy_ids));
      assert.ok(finish === 'stop' || finish === 'length');
      assert.equal(usage?.completion_tokens, c.greedy_ids.length);
    }
  });

  it('completions.create gives the golden text', async () => {
    const c = goldens.cases[1];
    const out = await client().completions.create({
      model: 'demo-small',
      prompt: c.prompt,
      temperature: 0,
      max_tokens: goldens.max_new_tokens,
    });
    assert.equal(out.choices[0].text, goldenText(c.greedy_ids));
    assert.equal(out.model, 'demo-small');
  });

  it('gives each token’s logprob and alternatives, the same as TGI’s details, streamed or not', async () => {
    const c = CHAT_CASES[0];
    const request = {
      model: 'demo-small',
      messages: [{ role: 'user' as const, content: userMessage(c.prompt) }],
      temperature: 0,
      max_tokens: goldens.max_new_tokens,
      logprobs: true,
      top_logprobs: 3,
    };
    const out = await client().chat.completions.create(request);
    const content = out.choices[0].logprobs!.content!;
    assert.equal(content.map((t) => t.token).join(''), out.choices[0].message.content);
    // TGI's route on the same prompt, its special tokens left out as the chat text leaves them out
    const tgi = await post('/generate', {
      inputs: c.prompt,
      parameters: { max_new_tokens: goldens.max_new_tokens, details: true, top_n_tokens: 3 },
    });
    type Tok = { text: string; logprob: number; special: boolean };
    const details = tgi.json.details as { tokens: Tok[]; top_tokens: Tok[][] };
    const kept = details.tokens.flatMap((t, i) => (t.special ? [] : [[t, details.top_tokens[i]] as const]));
    assert.equal(content.length, kept.length);
    kept.forEach(([t, top], i) => {
      assert.equal(content[i].token, t.text);
      assert.ok(Math.abs(content[i].logprob - t.logprob) < 1e-3, `${content[i].logprob} against ${t.logprob}`);
      assert.deepEqual(content[i].bytes, [...Buffer.from(t.text)]);
      assert.deepEqual(
        content[i].top_logprobs.map((x) => x.token),
        top.map((x) => x.text),
      );
      // greedy: the chosen token is the likeliest one
      assert.equal(content[i].top_logprobs[0].token, t.text);
    });
    const stream = await client().chat.completions.create({ ...request, stream: true });
    const streamed: OpenAI.ChatCompletionTokenLogprob[] = [];
    for await (const chunk of stream) streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
    assert.deepEqual(
      streamed.map((t) => [t.token, t.top_logprobs.length]),
      content.map((t) => [t.token, 3]),
    );
    streamed.forEach((t, i) => assert.ok(Math.abs(t.logprob - content[i].logprob) < 1e-3, `token ${i}: ${t.logprob}`));
  });

  it('gives completion logprobs in the legacy shape, streamed or not', async () => {
    const c = goldens.cases[1];
    const request = {
      model: 'demo-small',
      prompt: c.prompt,
      temperature: 0,
      max_tokens: goldens.max_new_tokens,
      logprobs: 2,
    };
    const out = await client().completions.create(request);
    const lp = out.choices[0].logprobs!;
    assert.equal(lp.tokens!.join(''), out.choices[0].text);
    assert.equal(lp.tokens!.length, lp.token_logprobs!.length);
    let at = 0;
    lp.tokens!.forEach((token, i) => {
      assert.equal(lp.text_offset![i], at);
      at += token.length;
      const top = lp.top_logprobs![i];
      assert.ok(Object.keys(top).length <= 2 && Object.keys(top).length > 0);
      assert.equal(top[token], lp.token_logprobs![i], 'greedy: the chosen token is among the likeliest');
    });
    const stream = await client().completions.create({ ...request, stream: true });
    const streamed: string[] = [];
    const offsets: number[] = [];
    for await (const chunk of stream) {
      streamed.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
      offsets.push(...(chunk.choices[0]?.logprobs?.text_offset ?? []));
    }
    assert.deepEqual(streamed, lp.tokens);
    assert.deepEqual(offsets, lp.text_offset);
  });

  it('honours logit_bias: tokens biased by -100 never appear, greedy or seeded, on TGI and OpenAI routes', async () => {
    const prompt = goldens.cases[0].prompt;
    type Details = { tokens: { id: number }[] };
    const base = await post('/generate', { inputs: prompt, parameters: { max_new_tokens: 12, details: true } });
    const banned = [...new Set((base.json.details as Details).tokens.map((t) => t.id))];
    const logit_bias = Object.fromEntries(banned.map((id) => [String(id), -100]));
    for (const extra of [{}, { do_sample: true, temperature: 1, seed: 7 }]) {
      const parameters = { max_new_tokens: 12, details: true, logit_bias, presence_penalty: 0.5, ...extra };
      const r = await post('/generate', { inputs: prompt, parameters });
      assert.equal(r.res.status, 200, r.text);
      const ids = (r.json.details as Details).tokens.map((t) => t.id);
      assert.ok(ids.length > 0);
      assert.deepEqual(
        ids.filter((id) => banned.includes(id)),
        [],
        `banned ${banned.join(',')}, got ${ids.join(',')}`,
      );
    }
    const openai = await post('/v1/completions', {
      model: 'demo-small',
      prompt,
      max_tokens: 12,
      temperature: 0,
      logit_bias,
    });
    assert.equal(openai.res.status, 200, openai.text);
    const text = (openai.json.choices as { text: string }[])[0].text;
    assert.notEqual(text, base.json.generated_text, 'the greedy text is not reachable with its tokens banned');
  });

  it('refuses what it does not implement, by name, and takes those fields’ neutral values', async () => {
    const chat = { model: 'demo-small', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
    const refused: [string, Record<string, unknown>, RegExp][] = [
      ['/v1/chat/completions', { ...chat, tools: [{ type: 'retrieval' }] }, /`tools\[\]\.type` must be "function"/],
      ['/v1/chat/completions', { ...chat, tool_choice: 'required' }, /`tool_choice`/],
      ['/v1/chat/completions', { ...chat, response_format: { type: 'yaml' } }, /`response_format`/],
      ['/v1/chat/completions', { ...chat, n: 9 }, /`n`/],
      ['/v1/chat/completions', { ...chat, unknown_field: 1 }, /`unknown_field` is not a field/],
      ['/v1/chat/completions', { ...chat, logit_bias: { '99999': -100 } }, /past the model's vocabulary of 8192/],
      ['/v1/chat/completions', { ...chat, presence_penalty: 3 }, /`presence_penalty` must be >= -2.0 and <= 2.0/],
      ['/v1/chat/completions', { ...chat, top_logprobs: 2 }, /`top_logprobs` needs `logprobs: true`/],
      ['/v1/chat/completions', { ...chat, logprobs: true, top_logprobs: 6 }, /`top_logprobs` must be at most 5/],
      ['/v1/chat/completions', { ...chat, logprobs: 'yes' }, /`logprobs` must be a boolean/],
      ['/v1/completions', { model: 'demo-small', prompt: 'hi', best_of: 3 }, /`best_of`/],
      ['/v1/completions', { model: 'demo-small', prompt: 'hi', logprobs: 1, echo: true, stream: true }, /`echo`/],
      [
        '/v1/completions',
        { model: 'demo-small', prompt: 'hi', logprobs: 9 },
        /`logprobs` must be an integer from 0 to 5/,
      ],
    ];
    for (const [path, body, message] of refused) {
      const { res, json } = await post(path, body);
      assert.equal(res.status, 422, `${JSON.stringify(body)} -> ${res.status}`);
      assert.match((json.error as { message: string }).message, message);
    }
    const neutral = { ...chat, tools: [], tool_choice: 'none', response_format: { type: 'text' }, logit_bias: {} };
    const ok = await post('/v1/chat/completions', neutral);
    assert.equal(ok.res.status, 200, ok.text);
  });

  it('lists the registered models, and describes one', async () => {
    const models = await client().models.list();
    assert.ok(models.data.some((m) => m.id === 'demo-small'));
    const one = await client().models.retrieve('demo-small');
    assert.deepEqual(
      one,
      models.data.find((m) => m.id === 'demo-small'),
    );
    await assert.rejects(client().models.retrieve('no-such-model'), (err: { status?: number; code?: string }) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      return true;
    });
  });

  it('answers errors in OpenAI’s shape', async () => {
    const unknown = await post('/v1/chat/completions', {
      model: 'no-such-model',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(unknown.res.status, 404);
    const err = unknown.json.error as { message: string; type: string; code: string };
    assert.equal(err.code, 'model_not_found');
    assert.equal(err.type, 'invalid_request_error');
    const bad = await post('/v1/chat/completions', { messages: 'hi' });
    assert.equal(bad.res.status, 422);
    assert.match((bad.json.error as { message: string }).message, /messages/);
  });
});

describe('validation, limits and malformed input', () => {
  const prompt = goldens.cases[0].prompt;
  const rules: [string, Record<string, unknown>, RegExp][] = [
    ['temperature', { temperature: 0 }, /temperature/],
    ['top_p', { top_p: 1.5 }, /top_p/],
    ['top_k', { top_k: 0 }, /top_k/],
    ['typical_p', { typical_p: 1 }, /typical_p/],
    ['repetition_penalty', { repetition_penalty: -1 }, /repetition_penalty/],
    ['frequency_penalty', { frequency_penalty: 3 }, /frequency_penalty/],
    ['best_of', { best_of: 3, do_sample: true }, /best_of/],
    ['best_of needs sampling', { best_of: 2 }, /sampling/],
    ['seed', { seed: -1 }, /seed/],
    ['top_n_tokens', { top_n_tokens: 6 }, /top_n_tokens/],
    ['stop', { stop: ['a', 'b', 'c', 'd', 'e'] }, /stop/],
    ['truncate', { truncate: 100_000 }, /truncate/],
    ['max_new_tokens', { max_new_tokens: 0 }, /max_new_tokens/],
    ['total tokens', { max_new_tokens: 100_000 }, /max_new_tokens/],
    ['watermark', { watermark: true }, /watermark/],
    ['grammar', { grammar: { type: 'json', value: { not: {} } } }, /`not` at # is not supported/],
    ['a wrong type', { max_new_tokens: 'ten' }, /max_new_tokens/],
    ['an undeclared parameter', { max_tokens: 5 }, /`max_tokens` is not a field this route takes: nothing is ignored/],
  ];
  for (const [name, parameters, message] of rules) {
    it(`refuses ${name} with 422 and error_type validation`, async () => {
      const { res, json } = await post('/generate', { inputs: prompt, parameters });
      assert.equal(res.status, 422, JSON.stringify(json));
      assert.equal(json.error_type, 'validation');
      assert.match(json.error as string, message);
    });
  }

  it('refuses a body field TGI’s routes do not declare, instead of dropping it', async () => {
    for (const path of ['/generate', '/generate_stream', '/']) {
      const { res, json } = await post(path, { inputs: prompt, parameters: { max_new_tokens: 2 }, temperature: 0.5 });
      assert.equal(res.status, 422, path);
      assert.equal(json.error_type, 'validation');
      assert.match(json.error as string, /`temperature` is not a field this route takes/);
    }
    const { res } = await post('/generate', {
      inputs: prompt,
      parameters: { max_new_tokens: 2 },
      add_special_tokens: true,
    });
    assert.equal(res.status, 200, 'TGI’s add_special_tokens: true is what the route does');
  });

  it('refuses streaming-only rules on /generate_stream', async () => {
    for (const parameters of [{ best_of: 2, do_sample: true }, { decoder_input_details: true }]) {
      const { res, json } = await post('/generate_stream', { inputs: prompt, parameters });
      assert.equal(res.status, 422);
      assert.equal(json.error_type, 'validation');
    }
  });

  it('answers empty, oversized and malformed input with a clean 4xx', async () => {
    const empty = await post('/generate', { inputs: '' });
    assert.equal(empty.res.status, 422);
    const long = await post('/generate', { inputs: 'word '.repeat(5000) });
    assert.equal(long.res.status, 422);
    assert.match(long.json.error as string, /inputs/);
    const malformed = await post('/generate', '{"inputs": "x",');
    assert.equal(malformed.res.status, 400);
    assert.equal(typeof malformed.json.error, 'string');
    const huge = await post('/generate', { inputs: 'x'.repeat(3_000_000) });
    assert.equal(huge.res.status, 413);
    const notObject = await post('/generate', '[1,2]');
    assert.equal(notObject.res.status, 422);
    const wrongType = await post('/generate', { inputs: 42 });
    assert.equal(wrongType.res.status, 422);
    const unknown = await post('/generate', { inputs: 'x', model: 'nope' });
    assert.equal(unknown.res.status, 404);
    for (const r of [empty, long, malformed, huge, notObject, wrongType, unknown]) {
      assert.ok(r.res.headers.get('x-request-id'));
      assert.ok(!r.text.includes('    at '), 'no stack trace');
    }
  });

  it('answers 429 at once beyond --max-concurrent-requests', async () => {
    const controllers = Array.from({ length: MAX_CONCURRENT }, () => new AbortController());
    const running = controllers.map((c) =>
      fetch(`${platform.url}/generate_stream`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platform.auth() },
        body: JSON.stringify({ inputs: LONG_PROMPT, parameters: { max_new_tokens: 450 } }),
        signal: c.signal,
      }).catch(() => null),
    );
    await waitFor(
      'all slots taken',
      async () => (await platform.metric('switchyard_requests_in_flight')) === MAX_CONCURRENT,
    );
    const started = Date.now();
    const { res, json } = await post('/generate', { inputs: prompt, parameters: { max_new_tokens: 2 } });
    assert.equal(res.status, 429);
    assert.equal(json.error_type, 'overloaded');
    assert.ok(Date.now() - started < 1000, 'answered at once, not queued');
    for (const c of controllers) c.abort();
    await Promise.all(running);
  });
});

describe('disconnects', () => {
  it('a streaming client that disconnects frees its batch slot', async () => {
    await waitFor('an empty batch', async () => (await platform.metric('tgi_batch_current_size')) === 0);
    const controller = new AbortController();
    const res = await fetch(`${platform.url}/generate_stream`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...platform.auth() },
      // greedy, this prompt repeats itself up to the token limit: seconds of work
      body: JSON.stringify({ inputs: LONG_PROMPT, parameters: { max_new_tokens: 1500 } }),
      signal: controller.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let events = 0;
    while (events < 3) {
      const { value } = await reader.read();
      events += (new TextDecoder().decode(value).match(/data:/g) ?? []).length;
    }
    await waitFor('the row in the batch', async () => (await platform.metric('tgi_batch_current_size')) === 1);
    controller.abort();
    await waitFor('the batch slot freed', async () => (await platform.metric('tgi_batch_current_size')) === 0, 10_000);
    // the worker ended the request as cancelled, in the API's inbox (the response's x-request-id names the request)
    const redis = new Redis(process.env.SWITCHYARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const requestId = res.headers.get('x-request-id')!;
      const [inbox] = await redis.keys(new RedisNames(platform.prefix).inbox('*'));
      const last = await waitFor('the cancelled event', async () => {
        const entries = await redis.xrange(inbox, '-', '+');
        const events = entries.flatMap(([, fields]) => decodeInboxEntry(fields) ?? []);
        const ours = events.filter(([id]) => id === requestId).map(([, event]) => event);
        return ours.at(-1)?.type === 'error' ? ours.at(-1) : undefined;
      });
      assert.equal(last.type === 'error' && last.errorType, 'cancelled');
    } finally {
      redis.disconnect();
    }
  });
});

describe('health and info', () => {
  it('reports the default model and its limits', async () => {
    assert.equal((await fetch(`${platform.url}/health`)).status, 200);
    const info = (await (await fetch(`${platform.url}/info`)).json()) as Record<string, unknown>;
    assert.equal(info.model_id, 'demo-small');
    assert.equal(info.max_concurrent_requests, MAX_CONCURRENT);
    assert.equal(typeof info.max_total_tokens, 'number');
  });

  it('tokenizes as the model does', async () => {
    const c = goldens.cases[2];
    const { json } = await post('/tokenize', { inputs: c.prompt });
    const tokens = json as unknown as { id: number; start: number; stop: number }[];
    assert.deepEqual(
      tokens.map((t) => t.id),
      c.prompt_ids,
    );
    assert.equal(tokens.at(-1)!.stop, c.prompt.length);
    // The spans tile the text: each starts where the one before stopped, and together they are the prompt.
    let at = 0;
    for (const t of tokens) {
      assert.equal(t.start, at);
      assert.ok(t.stop >= t.start);
      at = t.stop;
    }
    assert.equal(tokens.map((t) => c.prompt.slice(t.start, t.stop)).join(''), c.prompt);
  });
});
