/**
 * The fault suite: faults injected into a running platform (the launcher, its API and workers) on a Redis and a
 * Postgres of its own (test/support/private-stores.ts), which it stops and starts. Each scenario asserts what an
 * operator is promised in the README's "Operations" section.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type { Heartbeat } from '@switchyard/protocol';
import { LaunchedPlatform } from '../support/launched';
import { PrivatePostgres, PrivateRedis } from '../support/private-stores';
import { modelDir } from '../support/repo';

const MODEL = ['--model-id', modelDir('demo-tiny')];

interface Timed {
  status: number;
  ms: number;
  body: string;
  headers?: Headers;
}

/** A request that never waits past `timeoutMs` (status 0 on a timeout or a refused connection). */
async function timed(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Timed> {
  const started = performance.now();
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await res.text();
    return { status: res.status, ms: performance.now() - started, body, headers: res.headers };
  } catch (err) {
    return { status: 0, ms: performance.now() - started, body: String(err) };
  }
}

function post(platform: LaunchedPlatform, body: unknown, key?: string): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...platform.auth(key) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  };
}

/** Polls /health every 100 ms until stopped; each answer must come within a second. */
function watchHealth(platform: LaunchedPlatform): { stop: () => Promise<{ at: number; r: Timed }[]> } {
  const seen: { at: number; r: Timed }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      seen.push({ at, r: await timed(`${platform.url}/health`, {}, 1000) });
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A platform launched (with `flags`) on a Redis and a Postgres of the suite's own, for one describe block. A scenario
 * that fails with a store down gets it back before the platform stops, so that the suite never hangs.
 */
function onPrivateStores(flags: string[]): { pg: PrivatePostgres; redis: PrivateRedis; platform: LaunchedPlatform } {
  const stores = {
    pg: new PrivatePostgres(),
    redis: new PrivateRedis(),
    platform: null as unknown as LaunchedPlatform,
  };
  const { pg, redis } = stores;
  before(async () => {
    await Promise.all([pg.init(), redis.start()]);
    stores.platform = new LaunchedPlatform({ redisUrl: redis.url, databaseUrl: pg.url });
    await stores.platform.start(flags);
  });
  after(async () => {
    if (redis.port !== 0 && !redis.running) await redis.start();
    if (pg.port !== 0 && !pg.running) pg.start();
    await stores.platform?.stop();
    await redis.stop();
    pg.destroy();
  });
  return stores;
}

describe('faults: Postgres down for 15 s under keyed traffic', () => {
  const stores = onPrivateStores(MODEL);

  it('serves a key seen before the outage, answers admin routes 503, and loses no usage row', async () => {
    const { pg, platform } = stores;
    const created = await timed(
      `${platform.url}/admin/keys`,
      post(platform, { name: 'faults', scopes: ['inference'] }),
    );
    assert.equal(created.status, 201, created.body);
    const { key, id } = JSON.parse(created.body) as { key: string; id: string };
    const generate = () =>
      timed(
        `${platform.url}/generate`,
        post(platform, { inputs: 'The future of AI is', parameters: { max_new_tokens: 4 } }, key),
      );
    assert.equal((await generate()).status, 200);

    pg.stop();
    const outageEnds = Date.now() + 15_000;
    const inference: Timed[] = [];
    const admin: Timed[] = [];
    const unknown: Timed[] = [];
    await Promise.all([
      ...[0, 1].map(async () => {
        while (Date.now() < outageEnds) inference.push(await generate());
      }),
      (async () => {
        while (Date.now() < outageEnds) {
          admin.push(await timed(`${platform.url}/admin/keys`, { headers: platform.auth() }));
          unknown.push(await timed(`${platform.url}/generate`, post(platform, { inputs: 'x' }, 'sy-never-seen')));
          await new Promise((r) => setTimeout(r, 500));
        }
      })(),
    ]);
    pg.start();

    const statuses = (list: Timed[]) => [...new Set(list.map((r) => r.status))].sort();
    assert.ok(inference.length > 20, `only ${inference.length} requests in 15 s`);
    assert.deepEqual(statuses(inference), [200], 'a known key is served throughout the outage');
    assert.deepEqual(statuses(admin), [503], 'admin routes answer 503 while Postgres is down');
    assert.ok(admin.every((r) => (JSON.parse(r.body) as { error_type?: string }).error_type === 'service_unavailable'));
    assert.deepEqual(statuses(unknown), [503], 'a key never seen cannot be checked: 503, not 401 or 500');

    const answered = 1 + inference.filter((r) => r.status === 200).length;
    const rows = await until('every answered request has its usage row', 20_000, () => {
      try {
        const n = Number(pg.query(`SELECT count(*) FROM usage_records WHERE key_id = '${id}'`));
        return n >= answered ? n : undefined;
      } catch {
        return undefined; // still starting
      }
    });
    assert.equal(rows, answered);
    console.log(
      `Postgres down 15 s: ${inference.length} keyed requests, all 200; ${admin.length} admin calls, all 503; ` +
        `${rows} usage rows for ${answered} requests answered`,
    );
    const log = platform.output();
    assert.equal((log.match(/Postgres is unreachable/g) ?? []).length, 1, 'one log line for the outage');
    assert.doesNotMatch(log, /\n\s+at .*\(.*\.js:\d+:\d+\)/, 'no stack trace in the log');
  });
});

describe('faults: Redis down for 10 s', () => {
  const stores = onPrivateStores(MODEL);

  it('/health answers within a second throughout, requests get an answer within 3 s, service resumes', async () => {
    const { redis, platform } = stores;
    const generate = () =>
      timed(
        `${platform.url}/generate`,
        post(platform, { inputs: 'The future of AI is', parameters: { max_new_tokens: 4 } }),
      );
    assert.equal((await generate()).status, 200);
    const health = watchHealth(platform);
    await redis.stop();
    const downAt = Date.now();
    await until('/health says 503', 3000, async () => {
      const r = await timed(`${platform.url}/health`, {}, 1000);
      return r.status === 503 ? r : undefined;
    });
    const during: Timed[] = [];
    while (Date.now() - downAt < 8000) during.push(await generate());
    await new Promise((r) => setTimeout(r, Math.max(0, downAt + 10_000 - Date.now()))); // the outage lasts 10 s
    await redis.start();
    const backAt = Date.now();
    const first = await until('a request succeeds after Redis returns', 10_000, async () => {
      const r = await generate();
      return r.status === 200 ? r : undefined;
    });
    const resumedMs = Date.now() - backAt;
    await until('/health says 200', 5000, async () => {
      const r = await timed(`${platform.url}/health`, {}, 1000);
      return r.status === 200 ? r : undefined;
    });
    const polls = await health.stop();

    assert.ok(during.length > 0);
    for (const r of during) {
      assert.ok(r.ms < 3000, `a request during the outage took ${Math.round(r.ms)} ms`);
      assert.equal(r.status, 503, r.body);
    }
    assert.equal(first.status, 200);
    assert.ok(resumedMs < 3000, `requests succeeded again ${resumedMs} ms after Redis returned`);
    for (const { r } of polls) assert.ok(r.status === 200 || r.status === 503, `/health: ${r.status} ${r.body}`);
    const slowest = Math.max(...polls.map(({ r }) => r.ms));
    console.log(
      `Redis down 10 s: ${polls.length} /health polls, slowest ${Math.round(slowest)} ms; ${during.length} requests during, ` +
        `slowest ${Math.round(Math.max(...during.map((r) => r.ms)))} ms; requests succeeded again ${resumedMs} ms after Redis returned`,
    );
    assert.ok(slowest < 1000, `/health took ${Math.round(slowest)} ms`);
    const duringOutage = polls.filter(({ at }) => at > downAt + 1500 && at < backAt);
    assert.ok(duringOutage.length > 10);
    for (const { r } of duringOutage) {
      assert.equal(r.status, 503);
      assert.ok((JSON.parse(r.body) as { missing: string[] }).missing.includes('redis'), r.body);
    }
  });
});

describe('faults: a worker SIGKILLed with requests in flight', () => {
  // prompts whose greedy answers on demo-tiny run to about 400 tokens, so the rows are still running at the kill
  const prompts = Array.from({ length: 16 }, (_, i) => `Request ${[1, 2, 3, 4, 7, 8][i % 6]}: the future of AI is`);
  const parameters = { max_new_tokens: 400 };
  // two rows a batch: the sixteen requests take a few rounds, so some are still running when a worker dies
  const stores = onPrivateStores([...MODEL, '--num-workers', '2', '--max-batch-size', '2']);

  /** The live workers' heartbeats. */
  async function heartbeats(): Promise<Heartbeat[]> {
    const { redis, platform } = stores;
    const client = new Redis(redis.url);
    try {
      const ids = await client.zrange(`${platform.prefix}workers`, 0, -1);
      const values = ids.length ? await client.mget(ids.map((id) => `${platform.prefix}worker:${id}`)) : [];
      return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as Heartbeat);
    } finally {
      client.disconnect();
    }
  }

  it('answers every JSON request with the undisturbed text within 15 s, and ends every stream', async () => {
    const { redis, platform } = stores;
    await until('two workers hold the model', 60_000, async () =>
      (await heartbeats()).filter((b) => b.models.some((m) => m.state === 'loaded')).length === 2 ? true : undefined,
    );
    const json = (prompt: string) =>
      timed(`${platform.url}/generate`, post(platform, { inputs: prompt, parameters }), 60_000);
    // the undisturbed run: greedy, so each prompt's text is fixed
    const expected = await Promise.all(
      prompts
        .slice(0, 12)
        .map(async (p) => (JSON.parse((await json(p)).body) as { generated_text: string }).generated_text),
    );

    // the JSON requests first: each worker's two rows start with them, so the worker killed holds some
    const answers = prompts.slice(0, 12).map((p) => json(p));
    const streams = prompts.slice(12).map(async (_, i) => {
      const prompt = `Stream ${i}: the future of AI is`;
      const res = await fetch(`${platform.url}/generate_stream`, post(platform, { inputs: prompt, parameters }));
      return res.text();
    });
    // kill the worker that holds the most JSON requests at this moment, as BullMQ's active list says (each job
    // names its taker, `<worker id>/<incarnation>`)
    const jsonPrompts = new Set(prompts.slice(0, 12));
    const victim = await until('JSON requests are running', 30_000, async () => {
      const client = new Redis(redis.url);
      try {
        const queue = `${platform.prefix}generate:demo-tiny`;
        const active = await client.lrange(`${queue}:active`, 0, -1);
        const held = new Map<string, number>();
        for (const id of active) {
          const [data, takenBy] = await client.hmget(`${queue}:${id}`, 'data', 'pb');
          if (!data || !takenBy || !jsonPrompts.has((JSON.parse(data) as { inputText: string }).inputText)) continue;
          const worker = takenBy.slice(0, takenBy.lastIndexOf('/'));
          held.set(worker, (held.get(worker) ?? 0) + 1);
        }
        const [top] = [...held].sort((a, b) => b[1] - a[1]);
        if (!top) return undefined;
        return (await heartbeats()).find((b) => b.id === top[0]);
      } finally {
        client.disconnect();
      }
    });
    process.kill(victim.pid, 'SIGKILL');
    const killedAt = Date.now();
    console.log(`killed ${victim.id} (pid ${victim.pid}) at ${new Date(killedAt).toISOString()}`);

    const results = await Promise.all(answers);
    const doneMs = Date.now() - killedAt;
    console.log(
      `JSON requests done ${doneMs} ms after the kill; attempts ${results.map((r) => r.headers?.get('x-attempts')).join(' ')}`,
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200, `request ${i}: ${r.body}`);
      assert.equal(
        (JSON.parse(r.body) as { generated_text?: string }).generated_text,
        expected[i],
        `request ${i}'s text`,
      );
    });
    assert.ok(doneMs < 15_000, `the JSON requests ended ${doneMs} ms after the kill`);
    const rerun = results.filter((r) => Number(r.headers?.get('x-attempts')) > 1).length;
    assert.ok(rerun > 0, 'no JSON request was running on the worker killed');
    for (const text of await Promise.all(streams)) {
      const events = text
        .split('\n\n')
        .filter((e) => e.startsWith('data:'))
        .map((e) => JSON.parse(e.slice(5)) as { generated_text?: string | null; error?: string });
      const last = events.at(-1)!;
      assert.ok(
        (typeof last.generated_text === 'string' && last.generated_text.length > 0) || typeof last.error === 'string',
        `a stream ended without its final text or an error: ${JSON.stringify(last)}`,
      );
    }
    assert.match(
      platform.output(),
      /a worker died \(its heartbeat lapsed, or it restarted\) with \d+ request\(s\) running: they run again now/,
    );
  });
});

describe('faults: huge prompts', () => {
  let platform: LaunchedPlatform;

  before(async () => {
    platform = new LaunchedPlatform();
    await platform.start(MODEL);
  });
  after(() => platform?.stop());

  it('refuses 2 MB prompts with a 4xx while /health keeps answering within a second', async () => {
    const health = watchHealth(platform);
    const big = (chars: number) => 'lorem ipsum dolor sit amet '.repeat(Math.ceil(chars / 27)).slice(0, chars);
    const [over, under] = [big(2_000_000), big(1_900_000)];
    const results = await Promise.all([
      ...[over, over].map((inputs) => timed(`${platform.url}/generate`, post(platform, { inputs }))),
      ...[under, under].map((inputs) => timed(`${platform.url}/generate`, post(platform, { inputs }))),
      timed(`${platform.url}/tokenize`, post(platform, { inputs: under })),
      timed(`${platform.url}/v1/completions`, post(platform, { model: 'demo-tiny', prompt: under })),
    ]);
    const polls = await health.stop();
    console.log(
      `huge prompts: answered in ${results.map((r) => Math.round(r.ms)).join(', ')} ms; ` +
        `${polls.length} /health polls meanwhile, slowest ${Math.round(Math.max(...polls.map(({ r }) => r.ms)))} ms`,
    );
    assert.deepEqual(
      results.map((r) => r.status),
      [413, 413, 422, 422, 422, 422],
    );
    assert.match(
      (JSON.parse(results[2].body) as { error: string }).error,
      /characters long: .* takes at most \d+ input tokens/,
    );
    assert.ok(polls.length > 0);
    const slowest = Math.max(...polls.map(({ r }) => r.ms));
    assert.ok(slowest < 1000, `/health took ${Math.round(slowest)} ms`);
    assert.ok(polls.every(({ r }) => r.status === 200));
  });

  it('serves a 180,000-character prompt with `truncate`, cut to its last 64 tokens', async () => {
    const inputs = 'the quick brown fox jumps over the lazy dog. '.repeat(4000); // 180,000 characters
    const r = await timed(
      `${platform.url}/generate`,
      post(platform, { inputs, parameters: { truncate: 64, max_new_tokens: 2 } }),
    );
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers?.get('x-prompt-tokens'), '64');
  });

  it('refuses a request without a key before reading its body', async () => {
    const r = await timed(`${platform.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"inputs": "not json at all',
    });
    assert.equal(r.status, 401, r.body); // not 400: the malformed body was never parsed
  });
});
