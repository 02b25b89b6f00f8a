/**
 * The cost of scaling from zero: an API up alone, no worker; two requests (one streamed) for a model wait in its
 * queue, then a worker process is spawned, takes the load command, loads the model and serves them. Per round:
 * milliseconds from the worker's spawn to its load starting (process start-up, first heartbeat, the control
 * command), to the model loaded, and to the waiting stream's first token; the worker's own load time. The worker is
 * stopped between rounds, so each round starts from zero again (the model's files stay in the page cache after the
 * first). Timings only: nothing here passes or fails (test/scale-from-zero.e2e-spec.ts asserts the behaviour).
 *
 * Run: `npm run bench:cold-start -- [--rounds 5] [--model demo-small] [--quick]`.
 * Writes bench/results/cold-start/results.json (`--quick`: quick-cold-start/, not kept).
 */
import { parseArgs } from 'node:util';
import { ColdStart, coldStart } from '../test/support/cold-start';
import { LaunchedPlatform } from '../test/support/launched';
import { modelDir, REPO_ROOT } from '../test/support/repo';
import { machine, percentile, table, writeResult } from './support/stats';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    model: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds ?? (args.quick ? 1 : 5));
const MODEL = args.model ?? (args.quick ? 'demo-tiny' : 'demo-small');
const WORKER_FLAGS = ['--device-memory', '2GiB', '--host-memory', '0'];

function log(line: string): void {
  console.log(`bench:cold-start: ${line}`);
}

async function main(): Promise<void> {
  const platform = new LaunchedPlatform();
  await platform.startApiAlone(['--model-id', modelDir(MODEL), '--place-timeout', '5m']);
  const rounds: ColdStart[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const id = `cold-${i}`;
      const round = await coldStart(platform, MODEL, id, WORKER_FLAGS);
      if (round.json.status !== 200 || round.stream.status !== 200) {
        throw new Error(`round ${i}: answered ${round.json.status} and ${round.stream.status}: ${round.json.body}`);
      }
      rounds.push(round);
      log(
        `round ${i + 1}/${ROUNDS}: load started ${round.toLoadStartMs} ms, loaded ${round.toLoadedMs} ms, ` +
          `first token ${round.toFirstTokenMs} ms after the worker's spawn`,
      );
      await platform.stopWorker(id);
    }
  } finally {
    await platform.stop();
  }
  const columns: [string, (r: ColdStart) => number][] = [
    ['spawn to load start', (r) => r.toLoadStartMs],
    ["worker's load", (r) => r.loadMs],
    ['spawn to loaded', (r) => r.toLoadedMs],
    ['spawn to first token', (r) => r.toFirstTokenMs],
  ];
  console.log(
    `\n${MODEL}, ${ROUNDS} round(s), ${machine().cores} cores (ms)\n` +
      table(
        ['', 'p50', 'min', 'max', ...rounds.map((_, i) => `round ${i + 1}`)],
        columns.map(([name, of]) => {
          const values = rounds.map(of);
          return [name, percentile(values, 50), Math.min(...values), Math.max(...values), ...values];
        }),
      ),
  );
  const file = writeResult(REPO_ROOT, args.quick ? 'quick-cold-start' : 'cold-start', {
    model: MODEL,
    machine: machine(),
    at: new Date().toISOString(),
    rounds: rounds.map(({ toLoadStartMs, loadMs, toLoadedMs, toFirstTokenMs }) => ({
      toLoadStartMs,
      loadMs,
      toLoadedMs,
      toFirstTokenMs,
    })),
  });
  log(`wrote ${file}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
