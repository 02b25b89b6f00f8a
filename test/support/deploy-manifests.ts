/**
 * The deployment artifacts under deploy/, read the way their tools read them: the Kubernetes overlays rendered by
 * `kubectl kustomize` and validated offline against the Kubernetes and KEDA schemas (`kubernetes-models`), the
 * compose file through `docker-compose config`, and the metric names that the Grafana dashboard, the alert rules and
 * the KEDA trigger query, parsed out of their PromQL.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './repo';

export const DEPLOY_DIR = join(REPO_ROOT, 'deploy');
export const OVERLAYS_DIR = join(DEPLOY_DIR, 'k8s/overlays');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; [key: string]: unknown };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Runs a tool the deployment tests need; a missing one fails the test with how to install it, never skips it. */
export function runTool(command: string, args: string[], install: string): string {
  const result = spawnSync(command, args, { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`${command} is not installed: ${install}`);
  }
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status}:\n${result.stderr}${result.stdout}`);
  }
  return result.stdout;
}

/** The compose command here: docker-compose, or the docker CLI's compose plugin. */
export function composeCommand(): [string, string[]] {
  const works = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  if (works('docker-compose', ['version'])) return ['docker-compose', []];
  if (works('docker', ['compose', 'version'])) return ['docker', ['compose']];
  throw new Error(
    'neither docker-compose nor `docker compose` is installed: apt-get install -y docker-compose (.ci/run does)',
  );
}

export function overlayNames(): string[] {
  return readdirSync(OVERLAYS_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** `kubectl kustomize` of an overlay, as objects. */
export function renderOverlay(name: string): K8sObject[] {
  const text = runTool(
    'kubectl',
    ['kustomize', join(OVERLAYS_DIR, name)],
    'install kubectl (https://kubernetes.io/docs/tasks/tools/)',
  );
  return parseAllDocuments(text)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

// kubernetes-models is an ES module only, and this file compiles to CommonJS
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- a fixed body, so that tsc leaves import() alone
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<unknown>;

type ModelClass = new (data: unknown) => { validate(): void };

/**
 * The `kubernetes-models` class for an object's apiVersion and kind (KEDA's from `@kubernetes-models/keda`); throws
 * for a kind neither package knows, so that nothing goes unvalidated.
 */
async function modelClass(apiVersion: string, kind: string): Promise<ModelClass> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const specifier =
    group === 'keda.sh'
      ? `@kubernetes-models/keda/keda.sh/${version}`
      : `kubernetes-models/${group === '' ? version : `${group}/${version}`}`;
  const module = (await importEsm(specifier)) as Record<string, ModelClass | undefined>;
  const model = module[kind];
  if (!model) throw new Error(`no schema for ${apiVersion} ${kind} in ${specifier}`);
  return model;
}

/** Validates an object against its kind's schema; throws naming the object and what is wrong. */
export async function validateObject(object: K8sObject): Promise<void> {
  const Model = await modelClass(object.apiVersion, object.kind);
  try {
    new Model(object).validate();
  } catch (err) {
    throw new Error(`${object.kind}/${object.metadata.name}: ${(err as Error).message}`, { cause: err });
  }
}

/** `docker-compose config` of deploy/compose.yaml, parsed. */
export function composeConfig(): { services: Record<string, Record<string, unknown>> } {
  const [command, prefix] = composeCommand();
  const text = runTool(command, [...prefix, '-f', join(DEPLOY_DIR, 'compose.yaml'), 'config'], 'see above');
  return parse(text) as { services: Record<string, Record<string, unknown>> };
}

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Every PromQL expression of the Grafana dashboard, with the panel it is in; and its variables' queries. */
export function dashboardExpressions(): { where: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(join(DEPLOY_DIR, 'grafana/switchyard.json'), 'utf8')) as {
    panels: Panel[];
    templating?: { list: { name: string; query?: string | { query: string } }[] };
  };
  const found: { where: string; expr: string }[] = [];
  const visit = (panels: Panel[]) => {
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        if (target.expr) found.push({ where: `panel "${panel.title}"`, expr: target.expr });
      }
      visit(panel.panels ?? []);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    // label_values(metric, label) names a metric; its selector is PromQL
    const selector = query && /^label_values\((.*),\s*\w+\)$/.exec(query.trim())?.[1];
    if (selector) found.push({ where: `variable $${variable.name}`, expr: selector });
  }
  return found;
}

/** Every alert or recording rule's expression in deploy/prometheus/alerts.yaml. */
export function alertExpressions(): { where: string; expr: string }[] {
  const rules = parse(readFileSync(join(DEPLOY_DIR, 'prometheus/alerts.yaml'), 'utf8')) as {
    groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })));
}

/** The Prometheus queries of every KEDA ScaledObject's triggers in the rendered objects. */
export function scalerQueries(objects: K8sObject[]): { where: string; expr: string }[] {
  return objects
    .filter((o) => o.kind === 'ScaledObject')
    .flatMap((o) =>
      ((o.spec?.triggers ?? []) as { type: string; metadata: Record<string, string> }[])
        .filter((t) => t.type === 'prometheus')
        .map((t) => ({ where: `ScaledObject/${o.metadata.name}`, expr: t.metadata.query })),
    );
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, aggregation modifiers,
 * keywords, label names (inside `{}` or a `by (...)` list), strings, durations or Grafana variables.
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ');
  const names = new Set<string>();
  const token = /(\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|[smhdwy])*)|([a-zA-Z_:][a-zA-Z0-9_:]*)/g;
  for (const m of stripped.matchAll(token)) {
    const name = m[2];
    if (!name || KEYWORDS.has(name.toLowerCase())) continue;
    if (
      stripped
        .slice(m.index + m[0].length)
        .trimStart()
        .startsWith('(')
    )
      continue; // a function or aggregation
    names.add(name);
  }
  return [...names];
}

/** The families of a text exposition by name, with their types (`# TYPE` lines). */
export function exportedFamilies(text: string): Map<string, string> {
  const families = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) families.set(m[1], m[2]);
  return families;
}

/** Whether a selected name is served: a family, or a histogram family's _bucket, _sum or _count series. */
export function isExported(name: string, families: Map<string, string>): boolean {
  if (families.has(name)) return true;
  const suffix = /_(bucket|sum|count)$/.exec(name);
  return suffix !== null && families.get(name.slice(0, suffix.index)) === 'histogram';
}

/** The file's text, for the static checks of the Dockerfile and the like. */
export function repoFile(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}
