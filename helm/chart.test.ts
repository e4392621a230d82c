/**
 * The chart, checked with the real helm binary: lint and template must pass, its CRDs must be exactly
 * crds/ (STYLE 18: run helm/sync-crds.sh after changing them), and the RBAC it renders must stay least
 * privilege (the integration tests in operator/test/ prove the same rules against a real API server).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { ensureTools } from '../testenv';

const run = promisify(execFile);
const chart = path.join(__dirname, 'cryopod');
const crdSrc = path.join(__dirname, '..', 'crds');

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

async function template(...args: string[]): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const { helm } = await ensureTools();
  const { stdout } = await run(helm, ['template', 'cryopod', chart, '--namespace', 'cryopod-system', ...args], { maxBuffer: 16 << 20 });
  return (yaml.loadAll(stdout) as any[]).filter(Boolean); // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('helm/cryopod', () => {
  test('helm lint passes', async () => {
    const { helm } = await ensureTools();
    const { stdout } = await run(helm, ['lint', '--strict', chart]);
    expect(stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  test('the chart CRDs are a copy of crds/ (run helm/sync-crds.sh)', () => {
    const yamls = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
    expect(yamls(path.join(chart, 'crds'))).toEqual(yamls(crdSrc));
    for (const f of yamls(crdSrc)) {
      expect({ file: f, text: fs.readFileSync(path.join(chart, 'crds', f), 'utf8') }).toEqual({ file: f, text: fs.readFileSync(path.join(crdSrc, f), 'utf8') });
    }
  });

  test('store values: both get the store URL and the Secret; only the agents get the signing key', async () => {
    const docs = await template('--set', 'store.url=s3://bucket/cp', '--set', 'store.secretName=store-creds', '--set', 'store.signingSecretName=store-signing');
    const agent = docs.find((d) => d.kind === 'DaemonSet').spec.template.spec;
    const operator = docs.find((d) => d.kind === 'Deployment').spec.template.spec;
    const env = Object.fromEntries(agent.containers[0].env.map((e: { name: string; value?: string }) => [e.name, e.value]));
    expect(env).toMatchObject({ CRYOPOD_STORE_URL: 's3://bucket/cp', CRYOPOD_STORE_SECRET_DIR: '/etc/cryopod/store', CRYOPOD_INSECURE_UNSIGNED: 'false' });
    const agentSources = agent.volumes.find((v: { name: string }) => v.name === 'store-secrets').projected.sources.map((s: { secret: { name: string } }) => s.secret.name);
    expect(agentSources).toEqual(['store-creds', 'store-signing']);
    expect(operator.containers[0].args).toEqual(expect.arrayContaining(['--store-url=s3://bucket/cp', '--store-secret-dir=/etc/cryopod/store', '--insecure-unsigned=false']));
    expect(operator.volumes.find((v: { name: string }) => v.name === 'store-secrets').secret.secretName).toBe('store-creds');
    expect(JSON.stringify(operator)).not.toContain('store-signing');
    const plain = await template();
    expect(JSON.stringify(plain)).not.toContain('CRYOPOD_STORE_URL');
  });

  test('grafana.dashboard.enabled: a ConfigMap with the dashboard JSON and the sidecar label; off by default', async () => {
    const docs = await template('--set', 'grafana.dashboard.enabled=true');
    const cm = docs.find((d) => d.kind === 'ConfigMap');
    expect(cm.metadata.labels).toMatchObject({ grafana_dashboard: '1' });
    const dashboard = JSON.parse(cm.data['cryopod.json']);
    expect(dashboard.panels.map((p: { title: string }) => p.title)).toEqual(expect.arrayContaining([expect.stringMatching(/^Checkpoint phases/), expect.stringMatching(/^Frozen time/)]));
    expect((await template()).some((d) => d.kind === 'ConfigMap')).toBe(false);
  });

  test('helm template renders the CRDs, the operator, the agent and their RBAC', async () => {
    const docs = await template('--include-crds');
    const kinds = docs.map((d) => `${d.kind}/${d.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/cryopod-node-agent',
      'ClusterRole/cryopod-operator',
      'ClusterRoleBinding/cryopod-node-agent',
      'ClusterRoleBinding/cryopod-operator',
      'CustomResourceDefinition/checkpoints.cryopod.io',
      'CustomResourceDefinition/restores.cryopod.io',
      'DaemonSet/cryopod-node-agent',
      'Deployment/cryopod-operator',
      'Service/cryopod-node-agent-metrics',
      'Service/cryopod-operator-metrics',
      'ServiceAccount/cryopod-node-agent',
      'ServiceAccount/cryopod-operator',
    ]);
    const ds = docs.find((d) => d.kind === 'DaemonSet');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(true);
    expect(pod.containers[0].securityContext.privileged).toBe(true);
    expect(pod.containers[0].env).toContainEqual({ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } });
    expect(pod.volumes.map((v: { hostPath?: { path: string } }) => v.hostPath?.path).sort()).toEqual(['/sys/fs/cgroup', '/var/lib/cryopod/agent', '/var/lib/cryopod/images']);
    // The freeze journal survives container restarts: the state dir is the hostPath, at the same path.
    const env = pod.containers[0].env as Array<{ name: string; value?: string }>;
    expect(env).toContainEqual({ name: 'CRYOPOD_STATE_DIR', value: '/var/lib/cryopod/agent' });
    expect(env.map((e) => e.name)).not.toContain('CRYOPOD_HOST_PROC');
    const state = pod.volumes.find((v: { hostPath?: { path: string } }) => v.hostPath?.path === '/var/lib/cryopod/agent');
    expect(pod.containers[0].volumeMounts).toContainEqual({ name: state.name, mountPath: '/var/lib/cryopod/agent' });
    // One agent per node at a time (claims are told apart by boot ID on one node).
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    const dep = docs.find((d) => d.kind === 'Deployment');
    expect(dep.spec.template.spec.serviceAccountName).toBe('cryopod-operator');
    expect(dep.spec.template.spec.containers[0].securityContext.privileged).toBeUndefined();
  });

  test.each([
    ['cryopod-operator', ['pods/exec', 'secrets', 'nodes/proxy', 'nodes/status', 'pods/attach', 'serviceaccounts/token', '*']],
    ['cryopod-node-agent', ['secrets', 'pods/exec', '*']],
  ])('ClusterRole %s grants none of %j, and no wildcard verb', async (name, forbidden) => {
    const role = (await template()).find((d) => d.kind === 'ClusterRole' && d.metadata.name === name);
    const rules: Rule[] = role.rules;
    for (const r of rules) {
      expect(r.resources.filter((x) => forbidden.includes(x))).toEqual([]);
      expect(r.verbs).not.toContain('*');
      expect(r.apiGroups).not.toContain('*');
    }
    if (name === 'cryopod-operator') {
      // Nodes: read one by name (a Restore's target: labels and taints), nothing else.
      const nodeVerbs = rules.filter((r) => r.resources.includes('nodes')).flatMap((r) => r.verbs);
      expect(nodeVerbs).toEqual(['get']);
    }
    if (name === 'cryopod-node-agent') {
      // Its own work: read, and written only through the status subresource.
      const crVerbs = rules.filter((r) => r.resources.includes('checkpoints') || r.resources.includes('restores')).flatMap((r) => r.verbs);
      expect([...new Set(crVerbs)].sort()).toEqual(['get', 'list', 'watch']);
      const podVerbs = rules.filter((r) => r.resources.includes('pods')).flatMap((r) => r.verbs);
      expect(podVerbs.sort()).toEqual(['get', 'list', 'watch']);
    }
  });
});
