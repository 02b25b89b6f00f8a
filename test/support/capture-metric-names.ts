/**
 * Writes `test/support/metric-names.json`, the contract of GET /metrics (see `metric-contract.ts`), from a freshly
 * started platform: `npm run build && node dist/test/support/capture-metric-names.js && npx prettier --write
 * test/support/metric-names.json`. Run it only when a metric is
 * meant to change; the e2e spec checks the platform against the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LaunchedPlatform } from './launched';
import { exerciseMetrics, metricShapes } from './metric-contract';
import { REPO_ROOT } from './repo';

async function main(): Promise<void> {
  const platform = new LaunchedPlatform();
  await platform.start(['--host-memory', '1GiB']);
  try {
    await exerciseMetrics(platform);
    const text = await (await fetch(`${platform.url}/metrics`)).text();
    const file = join(REPO_ROOT, 'test/support/metric-names.json');
    writeFileSync(file, JSON.stringify(metricShapes(text), null, 2) + '\n');
    console.log(`wrote ${file}`);
  } finally {
    await platform.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
