/**
 * Issue 22's agents' API on the OpenAI routes, end to end on the platform as `npm start` starts it (demo-small):
 * structured outputs (`response_format`), tool calls through the `openai` SDK, `n` choices, `best_of` and `echo`
 * with logprobs on /v1/completions, TGI's `grammar` through @huggingface/inference, and the 422s. Every output is
 * checked with ajv against the schema the request gave, not with the code under test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Ajv from 'ajv';
import OpenAI from 'openai';
import { InferenceClient } from '@huggingface/inference';
import { LaunchedPlatform } from './support/launched';

const platform = new LaunchedPlatform();
const MAX_BEST_OF = 4;

before(() => platform.start(['--max-best-of', String(MAX_BEST_OF)]));
after(async () => {
  assert.equal(await platform.stop(), 0, 'Ctrl-C stops the platform cleanly');
});

const ajv = new Ajv({ strict: false });
const client = () => new OpenAI({ apiKey: platform.adminKey, baseURL: `${platform.url}/v1` });

const post = (path: string, body: unknown) => platform.post(path, body);

/** The `data:` events of an SSE answer, `[DONE]` left out. */
function events(text: string): Record<string, unknown>[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice('data: '.length)) as Record<string, unknown>);
}

type ChunkChoice = { index: number; delta?: { content?: string }; text?: string; finish_reason: string | null };

/** Each choice's streamed text and finish reason, by index. */
function assemble(text: string) {
  const out: { text: string; finish: string | null }[] = [];
  for (const e of events(text)) {
    for (const c of (e.choices as ChunkChoice[]) ?? []) {
      out[c.index] ??= { text: '', finish: null };
      out[c.index].text += c.delta?.content ?? c.text ?? '';
      if (c.finish_reason) out[c.index].finish = c.finish_reason;
    }
  }
  return out;
}

function assertValid(schema: object, text: string, label: string) {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    assert.fail(`${label}: not JSON: ${text}`);
  }
  const validate = ajv.compile(schema);
  assert.ok(validate(value), `${label}: ${text} -> ${ajv.errorsText(validate.errors)}`);
}

const str = (maxLength: number) => ({ type: 'string', maxLength });

/** Twenty schemas over the supported subset, each a different shape. */
const SCHEMAS: Record<string, object> = {
  flat: {
    type: 'object',
    properties: { name: str(12), age: { type: 'integer', minimum: 0, maximum: 120 } },
    required: ['name', 'age'],
    additionalProperties: false,
  },
  nested: {
    type: 'object',
    properties: {
      user: {
        type: 'object',
        properties: { id: { type: 'integer', minimum: 1, maximum: 9999 }, email: str(20) },
        required: ['id', 'email'],
        additionalProperties: false,
      },
    },
    required: ['user'],
    additionalProperties: false,
  },
  deep: {
    type: 'object',
    properties: {
      a: {
        type: 'object',
        properties: {
          b: {
            type: 'object',
            properties: { c: { type: 'boolean' } },
            required: ['c'],
            additionalProperties: false,
          },
        },
        required: ['b'],
        additionalProperties: false,
      },
    },
    required: ['a'],
    additionalProperties: false,
  },
  tags: {
    type: 'object',
    properties: { tags: { type: 'array', items: str(8), minItems: 1, maxItems: 3 } },
    required: ['tags'],
    additionalProperties: false,
  },
  matrix: {
    type: 'object',
    properties: {
      rows: {
        type: 'array',
        items: { type: 'array', items: { type: 'integer', minimum: -9, maximum: 9 }, minItems: 2, maxItems: 2 },
        minItems: 2,
        maxItems: 2,
      },
    },
    required: ['rows'],
    additionalProperties: false,
  },
  enumColor: {
    type: 'object',
    properties: { color: { enum: ['red', 'green', 'blue'] }, shade: { enum: [1, 2, 3] } },
    required: ['color', 'shade'],
    additionalProperties: false,
  },
  constKind: {
    type: 'object',
    properties: { kind: { const: 'point' }, x: { type: 'integer', minimum: 0, maximum: 10 } },
    required: ['kind', 'x'],
    additionalProperties: false,
  },
  boundedInts: {
    type: 'object',
    properties: {
      small: { type: 'integer', minimum: 3, maximum: 7 },
      negative: { type: 'integer', minimum: -50, maximum: -10 },
      wide: { type: 'integer', minimum: 100, maximum: 100000 },
    },
    required: ['small', 'negative', 'wide'],
    additionalProperties: false,
  },
  numbers: {
    type: 'object',
    properties: { price: { type: 'number', minimum: 0, maximum: 1000 }, ratio: { type: 'number' } },
    required: ['price', 'ratio'],
    additionalProperties: false,
  },
  booleans: {
    type: 'object',
    properties: { ok: { type: 'boolean' }, done: { type: 'boolean' }, seen: { type: 'boolean' } },
    required: ['ok', 'done', 'seen'],
    additionalProperties: false,
  },
  nullable: {
    type: 'object',
    properties: { note: { type: ['string', 'null'], maxLength: 10 }, gone: { type: 'null' } },
    required: ['note', 'gone'],
    additionalProperties: false,
  },
  anyOf: {
    type: 'object',
    properties: {
      value: { anyOf: [{ type: 'integer', minimum: 0, maximum: 99 }, str(6), { type: 'boolean' }] },
    },
    required: ['value'],
    additionalProperties: false,
  },
  anyOfObjects: {
    type: 'object',
    properties: {
      shape: {
        anyOf: [
          {
            type: 'object',
            properties: { circle: { type: 'number', minimum: 0, maximum: 10 } },
            required: ['circle'],
            additionalProperties: false,
          },
          {
            type: 'object',
            properties: { square: { type: 'integer', minimum: 0, maximum: 10 } },
            required: ['square'],
            additionalProperties: false,
          },
        ],
      },
    },
    required: ['shape'],
    additionalProperties: false,
  },
  shortStrings: {
    type: 'object',
    properties: { code: { type: 'string', minLength: 2, maxLength: 4 }, word: str(5) },
    required: ['code', 'word'],
    additionalProperties: false,
  },
  arrayOfObjects: {
    type: 'object',
    properties: {
      items: {
        type: 'array',
        minItems: 1,
        maxItems: 2,
        items: {
          type: 'object',
          properties: { sku: str(6), qty: { type: 'integer', minimum: 1, maximum: 5 } },
          required: ['sku', 'qty'],
          additionalProperties: false,
        },
      },
    },
    required: ['items'],
    additionalProperties: false,
  },
  topArray: { type: 'array', items: { type: 'integer', minimum: 0, maximum: 50 }, minItems: 1, maxItems: 4 },
  topEnum: { enum: ['yes', 'no', 'maybe'] },
  topInteger: { type: 'integer', minimum: 10, maximum: 20 },
  refs: {
    type: 'object',
    $defs: {
      point: {
        type: 'object',
        properties: { x: { type: 'integer', minimum: 0, maximum: 9 }, y: { type: 'integer', minimum: 0, maximum: 9 } },
        required: ['x', 'y'],
        additionalProperties: false,
      },
    },
    properties: { from: { $ref: '#/$defs/point' }, to: { $ref: '#/$defs/point' } },
    required: ['from', 'to'],
    additionalProperties: false,
  },
  mixed: {
    type: 'object',
    properties: {
      id: { const: 7 },
      status: { enum: ['open', 'closed'] },
      score: { type: 'number', minimum: -1, maximum: 1 },
      labels: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 },
      owner: { anyOf: [{ type: 'null' }, str(6)] },
    },
    required: ['id', 'status', 'score', 'labels', 'owner'],
    additionalProperties: false,
  },
};

const MESSAGES = [{ role: 'user', content: 'Answer in JSON.' }];

describe('structured outputs on /v1/chat/completions', () => {
  it('has twenty different schemas to try', () => {
    assert.equal(Object.keys(SCHEMAS).length, 20);
  });

  it('json_schema: every sampled answer (temperature 1) validates, whole and streamed', async () => {
    await Promise.all(
      Object.entries(SCHEMAS).map(async ([name, schema]) => {
        const body = {
          model: 'demo-small',
          messages: MESSAGES,
          temperature: 1,
          max_tokens: 120,
          response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
        };
        const whole = await post('/v1/chat/completions', body);
        assert.equal(whole.res.status, 200, `${name}: ${whole.text}`);
        const choice = (whole.json.choices as { message: { content: string }; finish_reason: string }[])[0];
        assertValid(schema, choice.message.content, `${name} (JSON)`);
        const streamed = await post('/v1/chat/completions', { ...body, stream: true });
        assert.equal(streamed.res.status, 200, `${name}: ${streamed.text}`);
        const [only] = assemble(streamed.text);
        assertValid(schema, only.text, `${name} (stream)`);
      }),
    );
  });

  it('json_object: any JSON object, whole and streamed, through the SDK', async () => {
    for (const stream of [false, true]) {
      const texts: string[] = [];
      if (stream) {
        const s = await client().chat.completions.create({
          model: 'demo-small',
          messages: [{ role: 'user', content: 'JSON please.' }],
          response_format: { type: 'json_object' },
          max_tokens: 80,
          n: 3,
          stream: true,
        });
        const parts: string[] = [];
        for await (const chunk of s)
          for (const c of chunk.choices) parts[c.index] = (parts[c.index] ?? '') + (c.delta.content ?? '');
        texts.push(...parts);
      } else {
        const r = await client().chat.completions.create({
          model: 'demo-small',
          messages: [{ role: 'user', content: 'JSON please.' }],
          response_format: { type: 'json_object' },
          max_tokens: 80,
          n: 3,
        });
        texts.push(...r.choices.map((c) => c.message.content ?? ''));
      }
      assert.equal(texts.length, 3);
      for (const t of texts) {
        const value = JSON.parse(t) as unknown;
        assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), t);
      }
    }
  });
});

const WEATHER = {
  type: 'object',
  properties: { city: str(16), unit: { enum: ['celsius', 'fahrenheit'] } },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const ADD = {
  type: 'object',
  properties: {
    a: { type: 'integer', minimum: -100, maximum: 100 },
    b: { type: 'integer', minimum: -100, maximum: 100 },
  },
  required: ['a', 'b'],
  additionalProperties: false,
};
const TOOLS: OpenAI.Chat.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: WEATHER } },
  { type: 'function', function: { name: 'add', description: 'Adds two integers', parameters: ADD } },
];
const PARAMETERS: Record<string, object> = { get_weather: WEATHER, add: ADD };

/** Asserts that each call names a tool and that its arguments validate against that tool's parameters. */
function assertCalls(calls: OpenAI.Chat.ChatCompletionMessageToolCall[] | undefined, only?: string) {
  assert.ok(calls && calls.length >= 1 && calls.length <= 4, JSON.stringify(calls));
  for (const call of calls) {
    assert.equal(call.type, 'function');
    assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
    const fn = call.function;
    if (only) assert.equal(fn.name, only);
    assert.ok(fn.name in PARAMETERS, fn.name);
    assertValid(PARAMETERS[fn.name], fn.arguments, fn.name);
  }
}

describe('tool calls through the openai SDK', () => {
  const ask = [{ role: 'user' as const, content: 'What is the weather in Paris?' }];

  it('required: the answer is calls whose arguments validate, with finish_reason tool_calls', async () => {
    for (const parallel of [true, false]) {
      const r = await client().chat.completions.create({
        model: 'demo-small',
        messages: ask,
        tools: TOOLS,
        tool_choice: 'required',
        parallel_tool_calls: parallel,
        temperature: 1,
        max_tokens: 200,
        n: 2,
      });
      assert.equal(r.choices.length, 2);
      for (const choice of r.choices) {
        assert.equal(choice.finish_reason, 'tool_calls');
        assert.equal(choice.message.content, null);
        assertCalls(choice.message.tool_calls);
        if (!parallel) assert.equal(choice.message.tool_calls!.length, 1);
      }
    }
  });

  it('a named function is the one called; none gives text', async () => {
    const named = await client().chat.completions.create({
      model: 'demo-small',
      messages: ask,
      tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'add' } },
      max_tokens: 200,
    });
    assertCalls(named.choices[0].message.tool_calls, 'add');
    const none = await client().chat.completions.create({
      model: 'demo-small',
      messages: ask,
      tools: TOOLS,
      tool_choice: 'none',
      max_tokens: 12,
    });
    assert.equal(typeof none.choices[0].message.content, 'string');
    assert.equal(none.choices[0].message.tool_calls, undefined);
    assert.notEqual(none.choices[0].finish_reason, 'tool_calls');
  });

  it('auto: calls that validate, or text that does not open like JSON', async () => {
    const r = await client().chat.completions.create({
      model: 'demo-small',
      messages: ask,
      tools: TOOLS,
      temperature: 1,
      max_tokens: 200,
      n: 4,
    });
    for (const choice of r.choices) {
      if (choice.finish_reason === 'tool_calls') assertCalls(choice.message.tool_calls);
      else assert.doesNotMatch(choice.message.content ?? '', /^[{[]/);
    }
  });

  it('streams calls the SDK assembles (chat.completions.stream), and takes the follow-up with the results', async () => {
    for (const choice of ['required', { type: 'function', function: { name: 'get_weather' } }] as const) {
      const stream = client().chat.completions.stream({
        model: 'demo-small',
        messages: ask,
        tools: TOOLS,
        tool_choice: choice,
        temperature: 1,
        max_tokens: 200,
      });
      const final = await stream.finalChatCompletion();
      const [answer] = final.choices;
      assert.equal(answer.finish_reason, 'tool_calls');
      assertCalls(answer.message.tool_calls, typeof choice === 'object' ? 'get_weather' : undefined);
      const calls = answer.message.tool_calls!;
      const followUp = await client().chat.completions.create({
        model: 'demo-small',
        messages: [
          ...ask,
          { role: 'assistant', content: null, tool_calls: calls },
          ...calls.map((c) => ({ role: 'tool' as const, tool_call_id: c.id, content: '{"temperature": 21}' })),
        ],
        tools: TOOLS,
        tool_choice: 'none',
        max_tokens: 8,
      });
      assert.equal(typeof followUp.choices[0].message.content, 'string');
    }
  });

  it('calls cut short by max_tokens come back as text with finish_reason length, whole and streamed', async () => {
    const body = {
      model: 'demo-small',
      messages: ask,
      tools: TOOLS,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 3,
    };
    const whole = await post('/v1/chat/completions', body);
    assert.equal(whole.res.status, 200, whole.text);
    const [choice] = whole.json.choices as {
      message: { content: string; tool_calls?: unknown };
      finish_reason: string;
    }[];
    assert.equal(choice.finish_reason, 'length');
    assert.equal(choice.message.tool_calls, undefined);
    assert.match(choice.message.content, /^\{/);
    const streamed = await post('/v1/chat/completions', { ...body, stream: true });
    assert.equal(assemble(streamed.text)[0].finish, 'length');
  });

  it('the streamed deltas have OpenAI’s shape: id, type and name first, then argument fragments', async () => {
    const { res, text } = await post('/v1/chat/completions', {
      model: 'demo-small',
      messages: ask,
      tools: TOOLS,
      tool_choice: 'required',
      parallel_tool_calls: false,
      max_tokens: 200,
      stream: true,
    });
    assert.equal(res.status, 200, text);
    type Delta = { index: number; id?: string; type?: string; function: { name?: string; arguments: string } };
    const deltas = events(text).flatMap((e) =>
      (e.choices as { delta: { tool_calls?: Delta[] } }[]).flatMap((c) => c.delta.tool_calls ?? []),
    );
    assert.ok(deltas.length >= 2, text);
    assert.deepEqual(Object.keys(deltas[0]).sort(), ['function', 'id', 'index', 'type']);
    assert.equal(deltas[0].function.arguments, '');
    for (const d of deltas.slice(1)) {
      assert.equal(d.id, undefined);
      assert.equal(d.index, 0);
    }
    const args = deltas.map((d) => d.function.arguments).join('');
    assertValid(PARAMETERS[deltas[0].function.name!], args, 'streamed arguments');
    const last = events(text).at(-1)!.choices as { finish_reason: string }[];
    assert.equal(last[0].finish_reason, 'tool_calls');
  });
});

describe('n choices, best_of and echo', () => {
  /** demo-small's eos tokens, banned where a test counts tokens: every generation runs to `max_tokens`. */
  const noEos = { '0': -100, '2': -100 };
  type Choice = {
    index: number;
    text: string;
    finish_reason: string;
    logprobs: { token_logprobs: (number | null)[]; tokens: string[] } | null;
  };

  it('n: 3 gives choices 0..2 on both routes, whole and streamed, with usage over all of them', async () => {
    const chat = {
      model: 'demo-small',
      messages: [{ role: 'user', content: 'Tell me a story.' }],
      max_tokens: 10,
      n: 3,
      logit_bias: noEos,
    };
    const completion = { model: 'demo-small', prompt: 'Once upon a time', max_tokens: 10, n: 3, logit_bias: noEos };
    for (const [path, body] of [
      ['/v1/chat/completions', chat],
      ['/v1/completions', completion],
    ] as const) {
      const whole = await post(path, { ...body, seed: 5 });
      assert.equal(whole.res.status, 200, whole.text);
      const choices = whole.json.choices as Choice[];
      assert.deepEqual(
        choices.map((c) => c.index),
        [0, 1, 2],
      );
      const u = whole.json.usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
      assert.equal(u.completion_tokens, 30, 'ten tokens for each of three choices');
      assert.equal(u.total_tokens, u.prompt_tokens + 30);

      const streamed = await post(path, { ...body, seed: 5, stream: true, stream_options: { include_usage: true } });
      assert.equal(streamed.res.status, 200, streamed.text);
      const parts = assemble(streamed.text);
      assert.equal(parts.length, 3);
      const wholeTexts = choices.map((c) =>
        'message' in c ? (c as unknown as { message: { content: string } }).message.content : c.text,
      );
      // the same seed gives the same choices: seed + i for choice i
      assert.deepEqual(
        parts.map((p) => p.text),
        wholeTexts,
      );
      assert.deepEqual(
        parts.map((p) => p.finish),
        ['length', 'length', 'length'],
      );
      const finishes = events(streamed.text).filter((e) =>
        (e.choices as ChunkChoice[]).some((c) => c.finish_reason !== null),
      );
      assert.equal(finishes.length, 3, 'one finish-reason chunk per choice');
      assert.deepEqual(events(streamed.text).at(-1)!.usage, u);
      assert.ok(new Set(wholeTexts).size > 1, `sampled choices differ: ${JSON.stringify(wholeTexts)}`);
    }
  });

  it('n with temperature 0 gives identical choices', async () => {
    const r = await client().chat.completions.create({
      model: 'demo-small',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 6,
      temperature: 0,
      n: 2,
    });
    assert.equal(r.choices.length, 2);
    assert.equal(r.choices[0].message.content, r.choices[1].message.content);
  });

  it('best_of generates more and answers with the n of highest total logprob', async () => {
    const { res, json, text } = await post('/v1/completions', {
      model: 'demo-small',
      prompt: 'Once upon a time',
      max_tokens: 8,
      n: 2,
      best_of: 4,
      logprobs: 0,
      logit_bias: noEos,
    });
    assert.equal(res.status, 200, text);
    const choices = json.choices as Choice[];
    assert.equal(choices.length, 2);
    const total = (c: Choice) => c.logprobs!.token_logprobs.reduce((s: number, v) => s + (v ?? 0), 0);
    assert.ok(total(choices[0]) >= total(choices[1]));
    assert.equal((json.usage as { completion_tokens: number }).completion_tokens, 32, 'all four generations count');
  });

  it('echo with logprobs: the prompt tokens first, the first with a null logprob', async () => {
    const prompt = 'Once upon a time';
    const { res, json, text } = await post('/v1/completions', {
      model: 'demo-small',
      prompt,
      max_tokens: 4,
      temperature: 0,
      echo: true,
      logprobs: 1,
    });
    assert.equal(res.status, 200, text);
    const [choice] = json.choices as Choice[];
    assert.ok(choice.text.startsWith(prompt));
    const lp = choice.logprobs!;
    const promptTokens = (json.usage as { prompt_tokens: number }).prompt_tokens;
    assert.equal(lp.tokens.length, promptTokens + 4);
    assert.equal(lp.token_logprobs[0], null);
    assert.ok(lp.token_logprobs.slice(1).every((v) => typeof v === 'number' && v <= 0));
    assert.equal(lp.tokens.join(''), choice.text);
  });
});

describe('TGI grammar on /v1/completions through @huggingface/inference', () => {
  it('textGeneration with a JSON grammar and with a regex grammar', async () => {
    const hf = new InferenceClient(platform.adminKey, { endpointUrl: platform.url });
    const schema = SCHEMAS.flat;
    const json = await hf.textGeneration({
      inputs: 'A person:',
      parameters: { max_new_tokens: 60, grammar: { type: 'json', value: schema } },
    });
    assertValid(schema, json.generated_text, 'json grammar');
    const regex = await hf.textGeneration({
      inputs: 'A date:',
      parameters: { max_new_tokens: 20, grammar: { type: 'regex', value: '[0-9]{4}-[0-9]{2}-[0-9]{2}' } },
    });
    assert.match(regex.generated_text, /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/);
  });
});

describe('what the agents’ API refuses, in OpenAI’s error shape', () => {
  const chat = { model: 'demo-small', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };
  const tool = TOOLS[1];
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    [
      'unknown field',
      '/v1/chat/completions',
      { ...chat, frobnicate: true },
      /`frobnicate` is not a field this route takes/,
    ],
    ['unknown field', '/v1/completions', { prompt: 'hi', return_full_text: true }, /`return_full_text` is not a field/],
    [
      'schema outside the subset',
      '/v1/chat/completions',
      {
        ...chat,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'string', pattern: '^a+$' } },
        },
      },
      /^`response_format\.json_schema\.schema`: .*pattern/,
    ],
    [
      'tool parameters outside the subset',
      '/v1/chat/completions',
      {
        ...chat,
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', patternProperties: {} } } }],
        tool_choice: 'required',
      },
      /^`tools`: `tools\[0\]\.function\.parameters` \(f\): .*patternProperties/,
    ],
    [
      'regex that does not compile',
      '/v1/completions',
      { prompt: 'hi', grammar: { type: 'regex', value: '(ab' } },
      /^`grammar`/,
    ],
    [
      'unknown tool name',
      '/v1/chat/completions',
      { ...chat, tools: [tool], tool_choice: { type: 'function', function: { name: 'nope' } } },
      /`tool_choice` names the function `nope`, which is not in `tools`/,
    ],
    [
      'grammar over 64 KB',
      '/v1/chat/completions',
      {
        ...chat,
        response_format: {
          type: 'json_schema',
          json_schema: { name: 'big', schema: { type: 'object', description: 'x'.repeat(70_000) } },
        },
      },
      /too large for a grammar: .* over the limit of 65536/,
    ],
    [
      'tool_choice without tools',
      '/v1/chat/completions',
      { ...chat, tool_choice: 'required' },
      /`tool_choice` needs `tools`/,
    ],
    ['n over the limit', '/v1/chat/completions', { ...chat, n: 9 }, /`n` must be an integer from 1 to 8/],
    [
      'best_of over --max-best-of',
      '/v1/completions',
      { prompt: 'hi', best_of: 5 },
      new RegExp(`\`best_of\` must be at most ${MAX_BEST_OF} on this server`),
    ],
    ['best_of under n', '/v1/completions', { prompt: 'hi', n: 3, best_of: 2 }, /`best_of` must be at least `n`/],
    [
      'best_of with stream',
      '/v1/completions',
      { prompt: 'hi', best_of: 2, stream: true },
      /`best_of` is not supported with `stream`/,
    ],
    [
      'a tool message without its call id',
      '/v1/chat/completions',
      { ...chat, messages: [{ role: 'tool', content: '1' }] },
      /`messages\[0\]\.tool_call_id` must be given/,
    ],
  ];
  for (const [label, path, body, message] of cases) {
    it(`${label} (${path})`, async () => {
      const { res, json, text } = await post(path, body);
      assert.equal(res.status, 422, text);
      const error = json.error as { message: string; type: string; code: string };
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(error.code, 'validation');
      assert.match(error.message, message);
    });
  }
});
