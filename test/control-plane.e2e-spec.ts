/**
 * The control plane on the platform as `npm start` starts it, plus a second API replica: API keys and their
 * answers, fallback routing, rate limits across replicas, usage records across a restart, and hostile input on
 * the admin routes. Every model and key a test makes has a fresh id, and is removed at the end.
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from 'pg';
import { OnnxModel, OnnxNode, TensorType } from '@switchyard/models';
import { waitFor } from './support/platform';
import { LaunchedPlatform, TEST_DATABASE_URL } from './support/launched';
import { loadGoldens, modelDir } from './support/repo';

const platform = new LaunchedPlatform();
let replica: { url: string; stop: () => Promise<void> };
const run = randomUUID().slice(0, 8);
const tinyId = `tiny-${run}`;
const smallId = `small-${run}`;
const brokenId = `broken-${run}`;
const brokenDir = mkdtempSync(join(tmpdir(), 'switchyard-broken-'));
const keysMade: string[] = [];
const tiny = loadGoldens('demo-tiny');

async function call(
  method: string,
  path: string,
  body?: unknown,
  key: string | null = platform.adminKey,
  base = platform.url,
) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // SSE or empty
  }
  return { res, text, json };
}

async function makeKey(fields: Record<string, unknown>): Promise<{ key: string; id: string }> {
  const { res, json } = await call('POST', '/admin/keys', { name: `test ${run}`, ...fields });
  assert.equal(res.status, 201, JSON.stringify(json));
  keysMade.push(json.id as string);
  return { key: json.key as string, id: json.id as string };
}

const generate = (key: string | null, model?: string, base = platform.url) =>
  call(
    'POST',
    '/generate',
    { inputs: 'Love is', parameters: { max_new_tokens: 2 }, ...(model ? { model } : {}) },
    key,
    base,
  );

before(async () => {
  await platform.start();
  replica = await platform.startReplica();
  for (const [id, dir] of [
    [tinyId, modelDir('demo-tiny')],
    [smallId, modelDir('demo-small')],
  ]) {
    const { res, json } = await call('POST', '/admin/models', { id, path: dir });
    assert.equal(res.status, 201, JSON.stringify(json));
  }
});

after(async () => {
  for (const id of keysMade) await call('DELETE', `/admin/keys/${id}`);
  for (const id of [smallId, brokenId, tinyId]) await call('DELETE', `/admin/models/${id}`);
  await replica?.stop();
  assert.equal(await platform.stop(), 0);
  rmSync(brokenDir, { recursive: true, force: true });
});

describe('API keys', () => {
  it('answers 401 without a key or with a wrong one, in each route family’s shape', async () => {
    const none = await generate(null);
    assert.equal(none.res.status, 401);
    assert.equal(none.json.error_type, 'unauthorized');
    const wrong = await generate('sy-not-a-real-key');
    assert.equal(wrong.res.status, 401);
    const openai = await call('POST', '/v1/completions', { prompt: 'x', max_tokens: 1 }, null);
    assert.equal(openai.res.status, 401);
    assert.equal((openai.json.error as { code: string }).code, 'unauthorized');
    assert.equal((await call('GET', '/admin/keys', undefined, null)).res.status, 401);
    // probes stay open
    assert.equal((await call('GET', '/health', undefined, null)).res.status, 200);
  });

  it('stores keys only as hashes', async () => {
    const { key, id } = await makeKey({});
    const db = new Client({ connectionString: TEST_DATABASE_URL });
    await db.connect();
    try {
      const rows = (await db.query('SELECT * FROM api_keys WHERE id = $1', [id])).rows as Record<string, unknown>[];
      assert.equal(rows.length, 1);
      assert.ok(!JSON.stringify(rows).includes(key), 'the plaintext key is in the database');
      assert.ok(!JSON.stringify(rows).includes(key.slice(12)), 'part of the key is in the database');
      assert.equal(rows[0].key_hash, createHash('sha256').update(key).digest('hex'));
      const listed = await call('GET', '/admin/keys');
      assert.ok(!listed.text.includes(key) && !listed.text.includes(rows[0].key_hash));
    } finally {
      await db.end();
    }
  });

  it('a revoked key stops working on every replica within a second', async () => {
    const { key, id } = await makeKey({});
    assert.equal((await generate(key, undefined, replica.url)).res.status, 200); // cached on the replica now
    assert.equal((await call('DELETE', `/admin/keys/${id}`)).res.status, 204);
    const revokedAt = Date.now();
    await waitFor(
      'the revocation on the replica',
      async () => (await generate(key, undefined, replica.url)).res.status === 401,
      3000,
    );
    assert.ok(Date.now() - revokedAt <= 1500, `took ${Date.now() - revokedAt} ms`);
    assert.equal((await generate(key)).res.status, 401);
    assert.equal((await call('DELETE', `/admin/keys/${id}`)).res.status, 404);
  });

  it('an expired key gets 401', async () => {
    const { key } = await makeKey({ expires_at: new Date(Date.now() - 1000).toISOString() });
    const { res, json } = await generate(key);
    assert.equal(res.status, 401);
    assert.match(json.error as string, /expired/);
  });

  it('a key without the scope gets 403, and an admin key may generate', async () => {
    const { key } = await makeKey({ scopes: ['inference'] });
    const admin = await call('GET', '/admin/models', undefined, key);
    assert.equal(admin.res.status, 403);
    assert.equal(admin.json.error_type, 'forbidden');
    const { key: adminOnly } = await makeKey({ scopes: ['admin'] });
    assert.equal((await generate(adminOnly)).res.status, 200);
  });

  it('a model outside allowed_models gets 403, with model_not_allowed', async () => {
    const { key } = await makeKey({ allowed_models: [tinyId] });
    const refused = await generate(key);
    assert.equal(refused.res.status, 403);
    assert.equal(refused.json.error_type, 'model_not_allowed');
    const chat = await call('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }, key);
    assert.equal(chat.res.status, 403);
    assert.equal((chat.json.error as { code: string }).code, 'model_not_allowed');
    const allowed = await generate(key, tinyId);
    assert.equal(allowed.res.status, 200);
    assert.equal(allowed.res.headers.get('x-served-model'), tinyId);
  });
});

describe('fallback routing', () => {
  it('a disabled model’s request is answered by its fallback, which says so and matches its goldens', async () => {
    assert.equal((await call('PATCH', `/admin/models/${smallId}`, { fallbacks: [tinyId] })).res.status, 200);
    assert.equal((await call('PATCH', `/admin/models/${smallId}`, { enabled: false })).res.status, 200);
    for (const c of tiny.cases.slice(0, 3)) {
      const { res, json } = await call('POST', '/generate', {
        model: smallId,
        inputs: c.prompt,
        parameters: { max_new_tokens: tiny.max_new_tokens, details: true },
      });
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.equal(res.headers.get('x-served-model'), tinyId);
      const ids = (json.details as { tokens: { id: number }[] }).tokens.map((t) => t.id);
      assert.deepEqual(ids, c.greedy_ids);
    }
    const chat = await call('POST', '/v1/completions', {
      model: smallId,
      prompt: 'Love is',
      max_tokens: 3,
      temperature: 0,
    });
    assert.equal(chat.json.model, tinyId);
  });

  it('a streaming request falls back before its first token', async () => {
    const c = tiny.cases[0];
    const { res, text } = await call('POST', '/generate_stream', {
      model: smallId,
      inputs: c.prompt,
      parameters: { max_new_tokens: tiny.max_new_tokens },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-served-model'), tinyId);
    const ids = text
      .split('\n\n')
      .filter(Boolean)
      .map((e) => (JSON.parse(e.slice(5)) as { token: { id: number } }).token.id);
    assert.deepEqual(ids, c.greedy_ids);
  });

  it('never falls back to a model the key may not use, nor logs or meters such a fallback', async () => {
    const { key } = await makeKey({ allowed_models: [smallId] });
    const before = await platform.metric('switchyard_fallbacks_total', { from: smallId, to: tinyId });
    const { res, json } = await generate(key, smallId);
    assert.equal(res.status, 503, JSON.stringify(json)); // smallId is disabled; its fallback is not this key's
    assert.match(String(json.error), /disabled/);
    assert.equal(await platform.metric('switchyard_fallbacks_total', { from: smallId, to: tinyId }), before);
  });

  it('a model whose directory broke after it was saved falls back too', async () => {
    cpSync(modelDir('demo-small'), brokenDir, { recursive: true });
    const saved = await call('POST', '/admin/models', { id: brokenId, path: brokenDir, fallbacks: [tinyId] });
    assert.equal(saved.res.status, 201, JSON.stringify(saved.json));
    rmSync(join(brokenDir, 'onnx'), { recursive: true, force: true });
    rmSync(join(brokenDir, 'config.json'), { force: true });
    const c = tiny.cases[1];
    const { res, json } = await call('POST', '/generate', {
      model: brokenId,
      inputs: c.prompt,
      parameters: { max_new_tokens: tiny.max_new_tokens, details: true },
    });
    assert.equal(res.status, 200, JSON.stringify(json));
    assert.equal(res.headers.get('x-served-model'), tinyId);
    assert.deepEqual(
      (json.details as { tokens: { id: number }[] }).tokens.map((t) => t.id),
      c.greedy_ids,
    );
    assert.ok((await platform.metric('switchyard_fallbacks_total', { from: brokenId, to: tinyId })) >= 1);
    assert.ok(
      (await platform.metric('switchyard_fallbacks_total', { from: smallId, to: tinyId, reason: 'disabled' })) >= 1,
    );
  });

  it('refuses fallback lists that loop or name unknown models, and broken directories', async () => {
    const loop = await call('PATCH', `/admin/models/${tinyId}`, { fallbacks: [smallId] });
    assert.equal(loop.res.status, 422);
    assert.match(loop.json.error as string, /loop/);
    const unknown = await call('PATCH', `/admin/models/${tinyId}`, { fallbacks: ['no-such-model'] });
    assert.equal(unknown.res.status, 422);
    const self = await call('PATCH', `/admin/models/${tinyId}`, { fallbacks: [tinyId] });
    assert.equal(self.res.status, 422);
    const broken = await call('POST', '/admin/models', { id: `nothing-${run}`, path: brokenDir });
    assert.equal(broken.res.status, 422);
    assert.match(broken.json.error as string, /not a servable model directory/);
  });

  it('refuses a directory whose graph is not a KV-cached decoder, without an ONNX session in the API', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-not-decoder-'));
    try {
      for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
        cpSync(join(modelDir('demo-tiny'), file), join(dir, file));
      }
      mkdirSync(join(dir, 'onnx'));
      const graph = OnnxModel.create({
        nodes: [OnnxNode.make('Identity', ['input_ids'], ['logits'], 'identity')],
        initializers: [],
        inputs: [{ name: 'input_ids', type: TensorType.Int64, dims: ['batch', 'seq'] }],
        outputs: [{ name: 'logits', type: TensorType.Int64, dims: ['batch', 'seq'] }],
        opsets: { '': 17 },
      });
      writeFileSync(join(dir, 'onnx', 'model.onnx'), graph.toBytes());
      const { res, json } = await call('POST', '/admin/models', { id: `encoder-${run}`, path: dir });
      assert.equal(res.status, 422, JSON.stringify(json));
      assert.match(json.error as string, /not a servable model directory/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers alike for a path that does not exist and one that does but is no model', async () => {
    const answers = [];
    for (const path of [
      brokenDir,
      join(brokenDir, 'no-such-dir'),
      join(brokenDir, 'tokenizer.json'),
      '/etc',
      '/nope',
    ]) {
      const { res, text } = await call('POST', '/admin/models', { id: `probe-${run}`, path });
      answers.push(`${res.status} ${text}`);
    }
    assert.equal(new Set(answers).size, 1, answers.join('\n'));
    assert.ok(!answers[0].includes(brokenDir), answers[0]);
  });
});

describe('rate limits', () => {
  it('a key with rpm_limit 5 gets 429 on its 6th request in the minute, on either replica', async () => {
    // start at the top of a minute window, so the six requests share it
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    const { key } = await makeKey({ rpm_limit: 5 });
    const bases = [platform.url, replica.url, platform.url, replica.url, platform.url];
    for (const base of bases) assert.equal((await generate(key, undefined, base)).res.status, 200);
    for (const base of [replica.url, platform.url]) {
      const { res, json } = await generate(key, undefined, base);
      assert.equal(res.status, 429);
      assert.equal(json.error_type, 'rate_limited');
      const retry = Number(res.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    }
  });
});

describe('usage', () => {
  it('records exactly one row per request, failures included, across an API restart', async () => {
    const { key, id } = await makeKey({});
    const from = new Date(Date.now() - 1000).toISOString();
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await generate(key));
    const bad = await call('POST', '/generate', { inputs: 'x', parameters: { temperature: -1 } }, key);
    assert.equal(bad.res.status, 422);
    // a restart in between: Ctrl-C flushes what the API holds
    assert.equal(await platform.stop(), 0);
    await replica.stop();
    await platform.start();
    replica = await platform.startReplica();
    ok.push(await generate(key, undefined, replica.url));
    const missing = await call('POST', '/generate', { inputs: 'x', model: 'no-such-model' }, key);
    assert.equal(missing.res.status, 404);
    const prompt = ok.map((r) => Number(r.res.headers.get('x-prompt-tokens'))).reduce((a, b) => a + b, 0);
    const generated = ok.map((r) => Number(r.res.headers.get('x-generated-tokens'))).reduce((a, b) => a + b, 0);
    const usage = await waitFor(
      'the usage rows',
      async () => {
        // the replica flushes every second: ask until its row is in
        const { json } = await call('GET', `/admin/usage?group_by=key&from=${encodeURIComponent(from)}`);
        const row = (json.rows as { group: string; requests: number }[]).find((r) => r.group === id);
        return row && row.requests === 6 ? row : undefined;
      },
      10_000,
    );
    assert.deepEqual(usage, { group: id, requests: 6, prompt_tokens: prompt, generated_tokens: generated, errors: 2 });
  });
});

describe('hostile input on the admin routes', () => {
  it('gets 4xx and changes nothing', async () => {
    const before = await call('GET', '/admin/models');
    const keysBefore = (await call('GET', '/admin/keys')).json;
    const attempts: [string, string, unknown][] = [
      ['GET', `/admin/models/${encodeURIComponent("x'; DROP TABLE models;--")}`, undefined],
      ['POST', '/admin/models', { id: "x'; DROP TABLE models;--", path: modelDir('demo-tiny') }],
      ['POST', '/admin/models', { id: 'a'.repeat(10_000), path: modelDir('demo-tiny') }],
      ['POST', '/admin/models', { id: `ok-${run}`, path: 42 }],
      ['POST', '/admin/models', { id: `ok-${run}`, path: modelDir('demo-tiny'), enabled: 'yes' }],
      ['POST', '/admin/models', { id: `ok-${run}`, path: modelDir('demo-tiny'), max_total_tokens: -5 }],
      ['POST', '/admin/models', { id: `ok-${run}`, path: modelDir('demo-tiny'), surprise: 1 }],
      ['POST', '/admin/models', '{"id": '],
      ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { temperature: 'hot' } }],
      ['PATCH', `/admin/models/${tinyId}`, { fallbacks: "'; DELETE FROM models;--" }],
      ['POST', '/admin/keys', { name: 'x'.repeat(100_000) }],
      ['POST', '/admin/keys', { name: 'k', scopes: ['root'] }],
      ['POST', '/admin/keys', { name: 'k', rpm_limit: '5' }],
      ['POST', '/admin/keys', { name: 'k', expires_at: 'tomorrow' }],
      ['POST', '/admin/keys', [1, 2, 3]],
      ['DELETE', `/admin/keys/${encodeURIComponent('1 OR 1=1')}`, undefined],
      ['GET', `/admin/usage?group_by=${encodeURIComponent('model; DROP TABLE usage_records')}`, undefined],
      ['GET', '/admin/usage?from=yesterday', undefined],
    ];
    for (const [method, path, body] of attempts) {
      const { res, text } = await call(method, path, body);
      assert.ok(
        res.status >= 400 && res.status < 500,
        `${method} ${path.slice(0, 60)} answered ${res.status}: ${text.slice(0, 200)}`,
      );
      assert.ok(!text.includes('    at '), 'no stack trace');
    }
    assert.deepEqual((await call('GET', '/admin/models')).json, before.json);
    assert.deepEqual((await call('GET', '/admin/keys')).json, keysBefore);
  });
});

describe('admin input that must not reach Postgres or the engine', () => {
  /** A JSON body whose `default_parameters` nests `depth` objects deep (`fields` go first). */
  const deep = (depth: number, fields: Record<string, unknown> = {}) =>
    `${JSON.stringify(fields).slice(0, -1)}${Object.keys(fields).length ? ',' : ''}"default_parameters":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
  const refused: [string, string, unknown, RegExp][] = [
    // control characters: Postgres cannot store a NUL, and none belongs in a name or a path
    ['POST', '/admin/keys', { name: 'a\u0000b' }, /control character/],
    ['POST', '/admin/keys', { name: 'line\nbreak' }, /control character/],
    ['POST', '/admin/models', { id: `ctl-${run}`, path: `${modelDir('demo-tiny')}\u0001` }, /control character/],
    ['POST', '/admin/models', { id: 'a\u0000b', path: modelDir('demo-tiny') }, /`id`/],
    ['GET', `/admin/models/${encodeURIComponent('a\u0000b')}`, undefined, /`id`/],
    // dates JavaScript takes but Postgres does not, or a calendar does not
    ['POST', '/admin/keys', { name: 'k', expires_at: '-010000-01-01T00:00:00Z' }, /`expires_at`/],
    ['POST', '/admin/keys', { name: 'k', expires_at: '+275000-01-01T00:00:00Z' }, /`expires_at`/],
    ['POST', '/admin/keys', { name: 'k', expires_at: '300000-01-01' }, /`expires_at`/],
    ['POST', '/admin/keys', { name: 'k', expires_at: '2024-13-45' }, /`expires_at`/],
    ['POST', '/admin/keys', { name: 'k', expires_at: '2024-02-30T00:00:00Z' }, /`expires_at`/],
    ['POST', '/admin/keys', { name: 'k', expires_at: 8.64e15 + 1 }, /`expires_at`/],
    ['GET', `/admin/usage?from=${encodeURIComponent('-010000-01-01T00:00:00Z')}`, undefined, /`from`/],
    ['GET', `/admin/usage?to=${encodeURIComponent('+275000-01-01T00:00:00Z')}`, undefined, /`to`/],
    ['GET', '/admin/usage?to=99999999999999999999', undefined, /`to`/],
    // default_parameters: bounded in shape, and checked as a request carrying them is
    ['PATCH', `/admin/models/${tinyId}`, deep(100_000), /default_parameters/],
    ['POST', '/admin/models', deep(100_000, { id: `deep-${run}`, path: modelDir('demo-tiny') }), /default_parameters/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { stop: [[[[['x']]]]] } }, /default_parameters/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { stop: ['\u0000'] } }, /default_parameters/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { max_new_tokens: -1 } }, /max_new_tokens/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { max_new_tokens: 1e9 } }, /max_new_tokens/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { temperature: 5e-324 } }, /temperature/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { repetition_penalty: 1e-300 } }, /repetition_penalty/],
    ['PATCH', `/admin/models/${tinyId}`, { default_parameters: { best_of: 2, do_sample: true } }, /streaming/],
  ];

  it('answers each with 422 `validation`, in TGI’s shape, and changes nothing', async () => {
    const models = (await call('GET', '/admin/models')).json;
    const keys = (await call('GET', '/admin/keys')).json;
    const wrong: string[] = [];
    for (const [method, path, body, message] of refused) {
      const { res, json, text } = await call(method, path, body);
      if (res.status !== 422 || json.error_type !== 'validation' || !message.test(json.error as string)) {
        const what = `${method} ${path.slice(0, 60)} ${JSON.stringify(body)?.slice(0, 80) ?? ''}`;
        wrong.push(`${what} answered ${res.status}: ${text.slice(0, 200)}`);
      }
    }
    assert.deepEqual(wrong, []);
    assert.deepEqual((await call('GET', '/admin/models')).json, models);
    assert.deepEqual((await call('GET', '/admin/keys')).json, keys);
  });

  it('still takes ISO 8601 dates and sane default_parameters', async () => {
    const { json } = await call('POST', '/admin/keys', { name: `dated ${run}`, expires_at: '2099-12-31T23:59:59Z' });
    keysMade.push(json.id as string);
    assert.equal(json.expires_at, '2099-12-31T23:59:59.000Z');
    const usage = await call('GET', '/admin/usage?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z');
    assert.equal(usage.res.status, 200, usage.text);
    const params = { temperature: 0.5, max_new_tokens: 4, stop: ['\n\n'] };
    const saved = await call('PATCH', `/admin/models/${tinyId}`, { default_parameters: params });
    assert.equal(saved.res.status, 200, saved.text);
    assert.deepEqual(saved.json.default_parameters, params);
    const generated = await call('POST', '/generate', { model: tinyId, inputs: 'Love is' });
    assert.equal(generated.res.status, 200, generated.text);
    assert.ok(Number(generated.res.headers.get('x-generated-tokens')) <= 4);
    assert.equal((await call('PATCH', `/admin/models/${tinyId}`, { default_parameters: {} })).res.status, 200);
  });

  it('refuses sampling parameters whose logprobs would be NaN, on TGI and OpenAI routes', async () => {
    const tgi = [{ temperature: 5e-324 }, { temperature: 1e-5 }, { repetition_penalty: 1e-300 }];
    for (const parameters of tgi) {
      const { res, json, text } = await call('POST', '/generate', { inputs: 'Love is', parameters });
      assert.equal(res.status, 422, `${JSON.stringify(parameters)}: ${text.slice(0, 200)}`);
      assert.equal(json.error_type, 'validation');
    }
    for (const fields of [{ temperature: 1e-300 }, { repetition_penalty: 1e-300 }]) {
      const { res, json } = await call('POST', '/v1/completions', { prompt: 'Love is', max_tokens: 2, ...fields });
      assert.equal(res.status, 422, JSON.stringify(fields));
      assert.equal((json.error as { code: string }).code, 'validation');
    }
    const ok = await call('POST', '/generate', {
      inputs: 'Love is',
      parameters: { temperature: 1e-4, repetition_penalty: 1e-4, max_new_tokens: 3, details: true, top_n_tokens: 2 },
    });
    assert.equal(ok.res.status, 200, ok.text);
    for (const t of (ok.json.details as { tokens: { logprob: number }[] }).tokens) {
      assert.ok(Number.isFinite(t.logprob), `logprob ${t.logprob}`);
    }
  });
});

describe('/v1/models and the key’s allowed_models', () => {
  it('lists only the models the key may use, and refuses the others as the generation routes do', async () => {
    const { key } = await makeKey({ allowed_models: [tinyId] });
    const listed = await call('GET', '/v1/models', undefined, key);
    assert.equal(listed.res.status, 200);
    assert.deepEqual(
      (listed.json.data as { id: string }[]).map((m) => m.id),
      [tinyId],
    );
    assert.equal((await call('GET', `/v1/models/${tinyId}`, undefined, key)).res.status, 200);
    for (const id of [smallId, 'demo-small', 'no-such-model']) {
      const { res, json } = await call('GET', `/v1/models/${id}`, undefined, key);
      assert.equal(res.status, 403, id);
      assert.equal((json.error as { code: string }).code, 'model_not_allowed');
    }
    // an unrestricted key sees every enabled model
    const all = await call('GET', '/v1/models');
    const ids = (all.json.data as { id: string }[]).map((m) => m.id);
    assert.ok(ids.includes(tinyId) && ids.includes('demo-small'), ids.join(', '));
  });
});

describe('admin views', () => {
  it('lists the live workers with their models and memory', async () => {
    const { res, json } = await call('GET', '/admin/workers');
    assert.equal(res.status, 200);
    const workers = json as unknown as {
      id: string;
      memory: { used_bytes: number; budget_bytes: number };
      models: { id: string; state: string }[];
    }[];
    assert.ok(workers.length >= 1);
    assert.ok(workers[0].memory.budget_bytes > 0);
    assert.ok(workers.some((w) => w.models.some((m) => m.id === 'demo-small' && m.state === 'loaded')));
  });

  it('shows the admin routes in the OpenAPI document', async () => {
    const doc = (await call('GET', '/api-doc/openapi.json', undefined, null)).json as {
      paths: Record<string, unknown>;
    };
    for (const path of ['/admin/keys', '/admin/models', '/admin/workers', '/admin/usage'])
      assert.ok(doc.paths[path], path);
  });
});
