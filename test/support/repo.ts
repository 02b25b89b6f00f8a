/** Paths and fixtures shared by the unit and end-to-end tests. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRepoRoot(start: string): string {
  let dir = start;
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'switchyard')
      return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no switchyard package.json above ${start}`);
    dir = parent;
  }
}

export const REPO_ROOT = findRepoRoot(__dirname);
export const MODELS_DIR = join(REPO_ROOT, 'models');
export const DEMO_MODELS = ['demo-tiny', 'demo-small'] as const;

export interface GoldenCase {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  greedy_text: string;
  top2_margins: number[];
}

export interface Goldens {
  max_new_tokens: number;
  stop_ids: number[];
  cases: GoldenCase[];
}

export function modelDir(name: string): string {
  return join(MODELS_DIR, name);
}

export function loadGoldens(name: string): Goldens {
  return JSON.parse(readFileSync(join(modelDir(name), 'goldens.json'), 'utf8')) as Goldens;
}
