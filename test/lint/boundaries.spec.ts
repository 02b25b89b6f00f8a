/**
 * The lint rule that keeps the apps apart (eslint.config.mjs): it must fire on a planted import of another app's
 * source, or of an app from a lib, and stay quiet on the imports the tree uses.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { REPO_ROOT } from '../support/repo';

async function violations(filePath: string, code: string): Promise<string[]> {
  // the planted files exist only as text, which the type checker cannot open; the boundary rules need no types
  const eslint = new ESLint({ cwd: REPO_ROOT, overrideConfig: tseslint.configs.disableTypeChecked });
  const [result] = await eslint.lintText(code, { filePath });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import boundaries', () => {
  it('refuses an app importing another app, and a lib importing an app', async () => {
    const planted: [string, string][] = [
      ['apps/api/src/planted.ts', "import { x } from '../../gpu-worker/src/models/model-host';\nexport { x };\n"],
      ['apps/gpu-worker/src/planted.ts', "import { x } from '../../api/src/main';\nexport { x };\n"],
      ['libs/models/src/planted.ts', "import { x } from '../../../apps/api/src/main';\nexport { x };\n"],
      // the launcher runs the API's preparation step as a process: importing it is the violation
      [
        'apps/launcher/src/planted.ts',
        "import { migrate } from '../../api/src/database/migrate';\nexport { migrate };\n",
      ],
      ['apps/launcher/src/planted.ts', "import { x } from '../../gpu-worker/src/main';\nexport { x };\n"],
      ['apps/api/src/planted.ts', "import { x } from '../../launcher/src/main';\nexport { x };\n"],
      ['libs/config/src/planted.ts', "import { x } from '../../../apps/launcher/src/main';\nexport { x };\n"],
    ];
    for (const [file, code] of planted) {
      const found = await violations(file, code);
      assert.equal(found.length, 1, `${file}: ${JSON.stringify(found)}`);
      assert.match(found[0], /may not import/);
    }
  });

  it('lets apps import the libs, and their own files', async () => {
    const code =
      "import { readWorkerConfig } from '@switchyard/config';\nimport { redisOptions } from '@switchyard/protocol';\n" +
      "import { AppModule } from './app.module';\nexport { readWorkerConfig, redisOptions, AppModule };\n";
    assert.deepEqual(await violations('apps/api/src/planted.ts', code), []);
    assert.deepEqual(await violations('apps/launcher/src/planted.ts', code), []);
  });
});
