/**
 * The deployment artifacts hold together without a cluster or a Docker daemon: every Kubernetes overlay renders
 * with `kubectl kustomize` and each object validates against the Kubernetes and KEDA schemas; the KEDA trigger
 * scales the worker Deployment from zero on a metric the API itself exports; every SWITCHYARD_* variable is a flag
 * that parses; `docker-compose config` accepts the compose file; the Dockerfile's targets and the paths the
 * manifests run exist. The metric names the dashboard and alerts query are checked on a live platform
 * (deploy-metrics.e2e-spec.ts).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { FLAGS, readApiConfig, readWorkerConfig } from '@switchyard/config';
import { ApiMetrics } from '../apps/api/src/metrics/api-metrics';
import {
  composeConfig,
  K8sObject,
  metricNames,
  overlayNames,
  renderOverlay,
  repoFile,
  scalerQueries,
  validateObject,
} from './support/deploy-manifests';
import { REPO_ROOT } from './support/repo';

interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  livenessProbe?: { exec?: { command: string[] } };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

const podSpec = (o: K8sObject) =>
  (o.spec as { template: { spec: { containers: Container[]; volumes?: { name: string }[] } } }).template.spec;

const find = (objects: K8sObject[], kind: string, name: string) => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  assert.ok(found, `${kind}/${name} is not rendered`);
  return found;
};

/** A container's SWITCHYARD_* environment as the pod would get it: its ConfigMaps, Secrets, then its own values. */
function containerEnv(objects: K8sObject[], container: Container): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    const source = find(objects, from.configMapRef ? 'ConfigMap' : 'Secret', ref!.name) as {
      data?: Record<string, string>;
      stringData?: Record<string, string>;
    };
    Object.assign(env, source.data ?? {}, source.stringData ?? {});
  }
  for (const e of container.env ?? []) env[e.name] = e.value ?? 'from-the-pod';
  return env;
}

const FLAG_VARIABLES = new Set([
  ...Object.keys(FLAGS).map((name) => `SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}`),
  'SWITCHYARD_ADMIN_KEY',
]);

function assertFlagVariables(env: Record<string, string>, where: string): void {
  for (const name of Object.keys(env)) {
    if (name.startsWith('SWITCHYARD_')) assert.ok(FLAG_VARIABLES.has(name), `${where}: ${name} is no flag`);
  }
}

describe('PromQL metric names', () => {
  it('are the selected series, not functions, labels, durations or variables', () => {
    assert.deepEqual(
      metricNames(
        'histogram_quantile(0.95, sum by (le, model) (rate(tgi_x_bucket{model=~"$model",m="a_b"}[$__rate_interval]))) > 1e3',
      ),
      ['tgi_x_bucket'],
    );
    assert.deepEqual(metricNames('max by (model) (a) > 0 unless on (model) count by (model) (b offset 5m)'), [
      'a',
      'b',
    ]);
    assert.deepEqual(metricNames('sum(rate(x[5m])) / sum(rate(y[5m])) > bool 0.05'), ['x', 'y']);
  });
});

for (const overlay of overlayNames()) {
  describe(`deploy/k8s/overlays/${overlay}`, () => {
    let objects: K8sObject[] = [];
    before(() => {
      objects = renderOverlay(overlay);
    });

    it('renders objects that validate against the Kubernetes and KEDA schemas', async () => {
      assert.ok(objects.length > 0);
      for (const object of objects) await validateObject(object);
      const kinds = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
      for (const expected of [
        'Deployment/switchyard-api',
        'Service/switchyard-api',
        'Deployment/switchyard-worker',
        'Job/switchyard-prepare',
        'ConfigMap/switchyard-flags',
        'Secret/switchyard-secrets',
        'PersistentVolumeClaim/switchyard-models',
        'ScaledObject/switchyard-worker',
      ]) {
        assert.ok(kinds.has(expected), `${expected} is missing`);
      }
    });

    it('scales the worker Deployment from zero on waiting jobs the API itself exports', () => {
      const scaled = find(objects, 'ScaledObject', 'switchyard-worker') as K8sObject & {
        spec: { minReplicaCount: number; scaleTargetRef: { kind?: string; name: string } };
      };
      assert.equal(scaled.spec.minReplicaCount, 0);
      assert.equal(scaled.spec.scaleTargetRef.kind ?? 'Deployment', 'Deployment');
      const target = find(objects, 'Deployment', scaled.spec.scaleTargetRef.name);
      const [worker] = podSpec(target).containers;
      assert.deepEqual(worker.livenessProbe?.exec?.command, ['node', 'dist/apps/gpu-worker/src/healthcheck.main.js']);
      const queries = scalerQueries(objects);
      assert.ok(queries.length > 0, 'no Prometheus trigger');
      // The API's own registry has the metric: it is in /metrics with no worker running, which scaling from zero
      // needs (the workers' series go with the last worker).
      const apiMetrics = new ApiMetrics();
      for (const { expr } of queries) {
        const names = metricNames(expr);
        assert.deepEqual(names, ['switchyard_queue_waiting_jobs'], expr);
        for (const name of names)
          assert.ok(apiMetrics.registry.getSingleMetric(name), `the API does not export ${name}`);
      }
    });

    it('gives each process flag variables that parse, and workers no database credentials', () => {
      const api = podSpec(find(objects, 'Deployment', 'switchyard-api')).containers[0];
      const apiEnv = containerEnv(objects, api);
      assertFlagVariables(apiEnv, 'the API');
      const apiConfig = readApiConfig([], apiEnv);
      assert.equal(apiConfig.hostname, '0.0.0.0');
      assert.ok(apiConfig.placeTimeoutMs > 0, 'with minReplicaCount 0 the API must wait for a cold start');
      assert.ok(apiConfig.adminKey);

      const worker = podSpec(find(objects, 'Deployment', 'switchyard-worker')).containers[0];
      const workerEnv = containerEnv(objects, worker);
      assertFlagVariables(workerEnv, 'the worker');
      assert.equal(workerEnv.SWITCHYARD_DATABASE_URL, undefined);
      assert.equal(workerEnv.SWITCHYARD_ADMIN_KEY, undefined);
      const workerConfig = readWorkerConfig([], workerEnv);
      assert.equal(workerConfig.redisUrl, apiConfig.redisUrl);
      assert.equal(workerConfig.redisPrefix, apiConfig.redisPrefix);
      // the worker preloads the model the API registers as the default, at the same path
      assert.deepEqual(
        workerConfig.preload.map((m) => [m.id, m.path]),
        [[apiConfig.modelName, apiConfig.modelDir]],
      );

      const prepare = podSpec(find(objects, 'Job', 'switchyard-prepare')).containers[0];
      assert.deepEqual(prepare.command, ['node', 'dist/apps/api/src/prepare.main.js']);
      // the same flags as the API (less where it listens): it registers the model the API serves, in its database
      const { SWITCHYARD_HOSTNAME: _host, SWITCHYARD_PORT: _port, ...shared } = apiEnv;
      assert.deepEqual(containerEnv(objects, prepare), shared);
    });

    it('mounts the read-only models volume at /models in every pod that reads models', () => {
      const pvc = find(objects, 'PersistentVolumeClaim', 'switchyard-models') as K8sObject & {
        spec: { accessModes: string[] };
      };
      assert.deepEqual(pvc.spec.accessModes, ['ReadOnlyMany']);
      for (const [kind, name] of [
        ['Deployment', 'switchyard-api'],
        ['Deployment', 'switchyard-worker'],
        ['Job', 'switchyard-prepare'],
      ]) {
        const mount = podSpec(find(objects, kind, name)).containers[0].volumeMounts?.find(
          (m) => m.mountPath === '/models',
        );
        assert.ok(mount?.readOnly, `${kind}/${name} does not mount /models read-only`);
      }
    });
  });
}

describe('deploy/compose.yaml', () => {
  it('is accepted by docker-compose config, with the stores, migrations, the API, two workers and monitoring', () => {
    const { services } = composeConfig();
    for (const name of ['postgres', 'redis', 'migrate', 'api', 'worker-1', 'worker-2', 'prometheus', 'grafana']) {
      assert.ok(services[name], `service ${name} is missing`);
    }
    const env = (name: string) => services[name].environment as Record<string, string>;
    for (const name of ['migrate', 'api', 'worker-1', 'worker-2']) {
      assertFlagVariables(env(name), name);
      const volumes = JSON.stringify(services[name].volumes);
      // v1 prints the short syntax, the compose plugin the long one
      assert.match(volumes, /:\/models:ro"|"target":"\/models"/, `${name} does not mount the models`);
    }
    const api = readApiConfig([], { ...env('api'), SWITCHYARD_HOSTNAME: '0.0.0.0' });
    for (const name of ['worker-1', 'worker-2']) {
      const worker = readWorkerConfig([], env(name));
      assert.equal(worker.redisUrl, api.redisUrl);
      assert.deepEqual(
        worker.preload.map((m) => m.path),
        [api.modelDir],
      );
    }
    assert.deepEqual((services.migrate.command as string[]).slice(-1), ['dist/apps/api/src/prepare.main.js']);
  });

  it('mounts the Prometheus rules where prometheus.yml reads them, and the dashboard where Grafana looks', () => {
    const compose = parse(repoFile('deploy/compose.yaml')) as {
      services: Record<string, { volumes: string[] }>;
    };
    const prometheus = parse(repoFile('deploy/prometheus/prometheus.yml')) as { rule_files: string[] };
    const promMounts = compose.services.prometheus.volumes.map((v) => v.split(':')[1]);
    for (const file of prometheus.rule_files) assert.ok(promMounts.includes(file), `${file} is not mounted`);
    const provider = parse(repoFile('deploy/grafana/provisioning/dashboards/switchyard.yaml')) as {
      providers: { options: { path: string } }[];
    };
    const grafanaMounts = compose.services.grafana.volumes.map((v) => v.split(':')[1]);
    assert.ok(grafanaMounts.some((m) => m.startsWith(`${provider.providers[0].options.path}/`)));
  });
});

describe('Dockerfile', () => {
  const dockerfile = repoFile('Dockerfile');
  /** Each stage's name and its lines. */
  const stages = new Map<string, string>();
  for (const part of dockerfile.split(/^(?=FROM )/m).slice(1)) {
    const name = /^FROM \S+ AS (\S+)/.exec(part)?.[1];
    if (name) stages.set(name, part);
  }

  it('builds the api, worker and worker-cuda targets, each non-root, with a health check', () => {
    for (const target of ['api', 'worker', 'worker-cuda']) {
      const stage = stages.get(target);
      assert.ok(stage, `no ${target} target`);
      assert.match(stage, /^HEALTHCHECK /m, `${target} has no HEALTHCHECK`);
    }
    // api and worker build on the runtime stage, which sets the user
    assert.match(stages.get('runtime')!, /^USER 10001$/m);
    assert.match(stages.get('worker-cuda')!, /^USER 10001$/m);
    assert.match(stages.get('worker-cuda')!, /^FROM \$\{CUDA_IMAGE\} AS worker-cuda/);
  });

  it('installs production dependencies only, and the CUDA provider against the project .npmrc', () => {
    assert.match(stages.get('build')!, /npm ci /);
    assert.match(stages.get('build')!, /npm run build/);
    assert.match(stages.get('runtime')!, /npm ci --omit=dev/);
    assert.match(repoFile('.npmrc'), /^onnxruntime-node-install=skip$/m);
    assert.match(stages.get('cuda-deps')!, /npm_config_onnxruntime_node_install=cuda12 npm ci --omit=dev/);
  });

  it('runs compiled entry points that exist, and leaves the models out of the build context', () => {
    const texts = [
      dockerfile,
      repoFile('deploy/compose.yaml'),
      ...['api.yaml', 'worker.yaml', 'prepare-job.yaml'].map((f) => repoFile(`deploy/k8s/base/${f}`)),
    ];
    const paths = new Set(texts.flatMap((t) => [...t.matchAll(/dist\/[\w/.-]+\.js/g)].map((m) => m[0])));
    assert.ok(paths.size >= 4);
    for (const path of paths) assert.ok(existsSync(join(REPO_ROOT, path)), `${path} is not built`);
    assert.ok(existsSync(join(REPO_ROOT, 'deploy/docker/worker-id.sh')));
    const ignore = repoFile('.dockerignore').split('\n');
    assert.ok(ignore.includes('*'), '.dockerignore must start from nothing');
    assert.ok(!ignore.some((l) => l.startsWith('!models')), 'models must not be in the build context');
  });
});
