import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import type { IContainer, IProbe } from 'kubernetes-models/v1';
import YAML from 'yaml';
import { loadSpec } from '../src/http/spec';
import { PROJECT_ROOT } from '../src/paths';

/**
 * deploy/kubernetes checked offline: every manifest validates against the Kubernetes schemas
 * (kubernetes-models), and the Deployment keeps the promises the README makes (replicas,
 * probes on paths the spec declares on the health port, non-root, read-only root filesystem,
 * resources, a grace period longer than the drain, secrets from a Secret).
 */

const DIR = path.join(PROJECT_ROOT, 'deploy', 'kubernetes');

type Manifest = { apiVersion: string; kind: string; metadata: { name: string } } & Record<
  string,
  unknown
>;

function load(file: string): Manifest[] {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(DIR, file), 'utf8'))
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null);
}

const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
const kustomization = load('kustomization.yaml')[0]! as Manifest & { resources: string[] };
const manifests = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((file) => load(file).map((m) => ({ file, m })));
const byKind = (kind: string) => manifests.filter(({ m }) => m.kind === kind).map(({ m }) => m);

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

test('when the manifests are read, then each validates against the Kubernetes schema of its kind', () => {
  expect(manifests.length).toBeGreaterThanOrEqual(5);
  for (const { file, m } of manifests) {
    const Model = MODELS[`${m.apiVersion}/${m.kind}`];
    expect({ file, kind: `${m.apiVersion}/${m.kind}`, known: Model !== undefined }).toEqual({
      file,
      kind: `${m.apiVersion}/${m.kind}`,
      known: true,
    });
    expect(() => new Model!(m as never).validate()).not.toThrow();
  }
});

test('when the manifests are read, then kustomization.yaml applies every one of them but the example Secret', () => {
  expect(kustomization.kind).toBe('Kustomization');
  const expected = files.filter((f) => f !== 'kustomization.yaml' && f !== 'secret.example.yaml');
  expect([...kustomization.resources].sort()).toEqual(expected.sort());
});

const deployment = new Deployment(byKind('Deployment')[0] as never);
const pod = deployment.spec!.template.spec!;
const container = pod.containers.find((c) => c.name === 'auth-service') as IContainer;

function env(name: string): string | undefined {
  const direct = container.env?.find((e) => e.name === name)?.value;
  if (direct !== undefined) return direct;
  for (const cm of byKind('ConfigMap') as (Manifest & { data: Record<string, string> })[]) {
    if (name in cm.data) return cm.data[name];
  }
  return undefined;
}

test('when the Deployment is read, then it runs at least 2 replicas that a disruption budget and a Service cover', () => {
  expect(deployment.spec!.replicas).toBeGreaterThanOrEqual(2);
  const labels = deployment.spec!.template.metadata!.labels!;
  const selects = (selector: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  expect(selects(deployment.spec!.selector.matchLabels!)).toBe(true);

  const pdb = new PodDisruptionBudget(byKind('PodDisruptionBudget')[0] as never);
  expect(selects(pdb.spec!.selector!.matchLabels!)).toBe(true);
  expect(Number(pdb.spec!.minAvailable)).toBeLessThan(deployment.spec!.replicas!);

  const service = new Service(byKind('Service')[0] as never);
  expect(selects(service.spec!.selector!)).toBe(true);
  const portNames = container.ports!.map((p) => p.name);
  for (const p of service.spec!.ports!) expect(portNames).toContain(p.targetPort);
});

test('when the probes are read, then they call paths the spec declares on the health port, on the port the service listens on', () => {
  const spec = loadSpec();
  const healthPaths = new Set(
    Object.keys((spec.forPort('health').paths ?? {}) as Record<string, unknown>),
  );
  const healthPort = container.ports!.find((p) => p.name === 'health')!;
  expect(String(healthPort.containerPort)).toBe(env('HEALTH_PORT'));
  expect(String(container.ports!.find((p) => p.name === 'http')!.containerPort)).toBe(env('PORT'));
  const probes: [string, IProbe | undefined][] = [
    ['liveness', container.livenessProbe],
    ['readiness', container.readinessProbe],
    ['startup', container.startupProbe],
  ];
  for (const [name, probe] of probes) {
    expect({
      name,
      path: probe?.httpGet?.path,
      declared: healthPaths.has(probe?.httpGet?.path ?? ''),
    }).toEqual({ name, path: probe?.httpGet?.path, declared: true });
    expect(probe!.httpGet!.port).toBe('health');
  }
  expect(container.readinessProbe!.httpGet!.path).toBe('/health/ready');
  expect(container.livenessProbe!.httpGet!.path).toBe('/health/live');
});

test('when the pod is read, then it runs as non-root without privilege escalation on a read-only root filesystem, with /tmp on an emptyDir', () => {
  expect(pod.securityContext?.runAsNonRoot).toBe(true);
  expect(pod.securityContext?.runAsUser).not.toBe(0);
  expect(pod.automountServiceAccountToken).toBe(false);
  expect(container.securityContext).toMatchObject({
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    capabilities: { drop: ['ALL'] },
  });
  const tmp = container.volumeMounts?.find((v) => v.mountPath === '/tmp');
  expect(tmp).toBeDefined();
  expect(pod.volumes?.find((v) => v.name === tmp!.name)?.emptyDir).toBeDefined();
  // Nothing is written outside embedded mode: a real database and the secrets are configured.
  expect(env('NODE_ENV')).toBe('production');
});

test('when the container is read, then it requests CPU and memory and has a memory limit', () => {
  expect(container.resources?.requests).toEqual(
    expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
  );
  expect(container.resources?.limits?.memory).toEqual(expect.any(String));
});

test('when the pod is stopped, then the grace period is longer than the pause before SIGTERM, the drain and closing the pools', () => {
  const drain = Number(env('SHUTDOWN_TIMEOUT_SECONDS'));
  expect(drain).toBeGreaterThan(0);
  const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
  const pause = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
  // src/server.ts gives closing the pools 5 s beyond SHUTDOWN_TIMEOUT_SECONDS.
  expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(pause + drain + 5);
});

test('when secrets are configured, then they come from the Secret, never from the ConfigMap or the manifest', () => {
  const secret = byKind('Secret')[0] as Manifest & { stringData: Record<string, string> };
  const secretNames = ['DATABASE_URL', 'REDIS_URL', 'JWT_SECRET_KEY', 'ENCRYPTION_MASTER_KEY'];
  for (const name of secretNames) {
    const ref = container.env?.find((e) => e.name === name)?.valueFrom?.secretKeyRef;
    expect({ name, secret: ref?.name, key: ref?.key }).toEqual({
      name,
      secret: secret.metadata.name,
      key: name,
    });
    expect(Object.keys(secret.stringData)).toContain(name);
  }
  const configMap = byKind('ConfigMap')[0] as Manifest & { data: Record<string, string> };
  for (const key of Object.keys(configMap.data)) {
    expect(key).not.toMatch(/SECRET|PASSWORD|KEY|DATABASE_URL|REDIS_URL/);
  }
  expect(container.env?.filter((e) => /SECRET|PASSWORD|_KEY$/.test(e.name) && e.value)).toEqual([]);
});

test('when the manifests set a variable, then .env.example documents it', () => {
  const documented = new Set(
    [
      ...fs
        .readFileSync(path.join(PROJECT_ROOT, '.env.example'), 'utf8')
        .matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm),
    ].map((m) => m[1]!),
  );
  const configMap = byKind('ConfigMap')[0] as Manifest & { data: Record<string, string> };
  const names = [...(container.env ?? []).map((e) => e.name), ...Object.keys(configMap.data)];
  expect(names.filter((n) => !documented.has(n))).toEqual([]);
});
