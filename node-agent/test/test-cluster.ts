/**
 * Integration-test helper: the real control plane (testenv) prepared for the agent: the CRDs from crds/
 * applied and established, the agent's RBAC (rendered from helm/cryopod with the real helm binary when
 * the chart has an agent ClusterRole, else the rules the chart is meant to give: agentRules below), and
 * small admin-side helpers to create Pods (with a running container status, as a kubelet would write it)
 * and Checkpoints already dispatched (label + status, as the operator would write them).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as k8s from '@kubernetes/client-node';
import { apiRequest, ensureTools, startControlPlane, type ControlPlane } from '../../testenv';
import { API_VERSION, Checkpoint, CheckpointSpec, Restore } from '../../crds/types';
import { NODE_LABEL } from '../../kube';

export const AGENT_USER = 'system:serviceaccount:cryopod-system:cryopod-agent';
export const AGENT_GROUPS = ['system:serviceaccounts', 'system:serviceaccounts:cryopod-system'];
const ROOT = path.join(__dirname, '..', '..');

/** What the chart gives the agent (used only while helm/cryopod has no agent ClusterRole). */
export const agentRules = [
  { apiGroups: ['cryopod.io'], resources: ['checkpoints', 'restores'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
  { apiGroups: ['cryopod.io'], resources: ['checkpoints/status', 'restores/status'], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
];

export interface TestCluster {
  cp: ControlPlane;
  admin: string;
  agentKubeconfig: string;
  rbacSource: 'helm' | 'test';
  kubectl(args: string[], input?: string): string;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The agent's ClusterRole from the chart, if the chart has one. */
function helmAgentRole(helm: string): { rules: unknown[] } | undefined {
  const chart = path.join(ROOT, 'helm', 'cryopod');
  if (!fs.existsSync(path.join(chart, 'Chart.yaml'))) return undefined;
  const out = execFileSync(helm, ['template', 'cryopod', chart, '--namespace', 'cryopod-system'], { encoding: 'utf8' });
  const docs = k8s.loadAllYaml(out) as Array<{ kind?: string; metadata?: { name?: string }; rules?: unknown[] }>;
  const role = docs.find((d) => d?.kind === 'ClusterRole' && /agent/.test(d.metadata?.name ?? ''));
  return role?.rules ? { rules: role.rules } : undefined;
}

export async function startTestCluster(): Promise<TestCluster> {
  const tools = await ensureTools();
  const cp = await startControlPlane();
  const admin = cp.adminKubeconfig;
  const kubectl = (args: string[], input?: string): string => execFileSync(tools.kubectl, ['--kubeconfig', admin, ...args], { encoding: 'utf8', input });
  try {
    for (let i = 0; !fs.existsSync(path.join(ROOT, 'crds', 'cryopod.io_checkpoints.yaml')); i++) {
      if (i > 600) throw new Error('crds/cryopod.io_checkpoints.yaml never appeared');
      await sleep(1000);
    }
    kubectl(['apply', '-f', path.join(ROOT, 'crds', 'cryopod.io_checkpoints.yaml')]);
    kubectl(['apply', '-f', path.join(ROOT, 'crds', 'cryopod.io_restores.yaml')]);
    kubectl(['wait', '--for', 'condition=established', '--timeout=60s', 'crd/checkpoints.cryopod.io', 'crd/restores.cryopod.io']);
    kubectl(['create', 'namespace', 'cryopod-system']);

    const fromHelm = helmAgentRole(tools.helm);
    const role = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'cryopod-agent-test' }, rules: fromHelm?.rules ?? agentRules };
    const binding = {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'cryopod-agent-test' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cryopod-agent-test' },
      subjects: [{ kind: 'ServiceAccount', name: 'cryopod-agent', namespace: 'cryopod-system' }],
    };
    kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [role, binding] }));
    const agentKubeconfig = await cp.kubeconfigFor(AGENT_USER, AGENT_GROUPS);
    return { cp, admin, agentKubeconfig, rbacSource: fromHelm ? 'helm' : 'test', kubectl, stop: () => cp.stop() };
  } catch (err) {
    await cp.stop();
    throw err;
  }
}

async function ok(res: Promise<{ status: number; body: any }>, what: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await res;
  if (r.status >= 300) throw new Error(`${what}: HTTP ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function createNamespace(admin: string, name: string): Promise<void> {
  await ok(apiRequest(admin, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }), 'create namespace');
}

/** A Pod on `node` whose container "app" runs with this containerID (status written as a kubelet would). */
export async function createPod(admin: string, ns: string, name: string, node: string): Promise<k8s.V1Pod> {
  const pod = await ok(
    apiRequest(admin, 'POST', `/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels: { app: name } },
      spec: { nodeName: node, containers: [{ name: 'app', image: 'cryopod-test/counter:1' }] },
    }),
    'create pod',
  );
  return pod as k8s.V1Pod;
}

export async function setContainerRunning(admin: string, pod: k8s.V1Pod, containerID: string, image = 'cryopod-test/counter:1'): Promise<k8s.V1Pod> {
  const now = new Date().toISOString();
  const body = {
    ...pod,
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }],
      containerStatuses: [
        { name: 'app', containerID, image, imageID: image.replace(/:[^:/]*$/, '') + '@sha256:' + '0'.repeat(64), ready: true, restartCount: 0, started: true, state: { running: { startedAt: now } } },
      ],
    },
  };
  return (await ok(apiRequest(admin, 'PUT', `/api/v1/namespaces/${pod.metadata?.namespace}/pods/${pod.metadata?.name}/status`, body), 'pod status')) as k8s.V1Pod;
}

/** A Checkpoint as the operator leaves it after dispatch: label for the node, status Dispatched. */
export async function createDispatchedCheckpoint(admin: string, ns: string, name: string, podName: string, node: string, podUID?: string, spec: Partial<CheckpointSpec> = {}): Promise<Checkpoint> {
  const base = `/apis/cryopod.io/v1alpha1/namespaces/${ns}/checkpoints`;
  const created = (await ok(
    apiRequest(admin, 'POST', base, { apiVersion: API_VERSION, kind: 'Checkpoint', metadata: { name, namespace: ns, labels: { [NODE_LABEL]: node } }, spec: { ...spec, podName } }),
    'create checkpoint',
  )) as Checkpoint;
  const now = new Date().toISOString();
  created.status = {
    phase: 'Dispatched',
    nodeName: node,
    ...(podUID ? { podUID } : {}),
    dispatchedAt: now,
    conditions: [{ type: 'Dispatched', status: 'True', reason: 'Dispatched', message: `dispatched to node ${node}`, lastTransitionTime: now }],
  };
  return (await ok(apiRequest(admin, 'PUT', `${base}/${name}/status`, created), 'dispatch checkpoint')) as Checkpoint;
}

export async function getCheckpoint(admin: string, ns: string, name: string): Promise<Checkpoint> {
  return (await ok(apiRequest(admin, 'GET', `/apis/cryopod.io/v1alpha1/namespaces/${ns}/checkpoints/${name}`), 'get checkpoint')) as Checkpoint;
}

/** Polls get() until the object's phase is one of phases; throws with its last status after timeoutMs. */
async function waitForObjectPhase<T extends { status?: { phase?: string } }>(what: string, get: () => Promise<T>, phases: string[], timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const obj = await get();
    if (phases.includes(obj.status?.phase ?? '')) return obj;
    if (Date.now() > deadline) throw new Error(`${what} is ${obj.status?.phase}, not ${phases.join('|')}, after ${timeoutMs} ms: ${JSON.stringify(obj.status)}`);
    await sleep(100);
  }
}

export async function waitForPhase(admin: string, ns: string, name: string, phases: string[], timeoutMs = 60000): Promise<Checkpoint> {
  return waitForObjectPhase(`checkpoint ${ns}/${name}`, () => getCheckpoint(admin, ns, name), phases, timeoutMs);
}

export async function eventsFor(admin: string, ns: string, name: string): Promise<k8s.CoreV1Event[]> {
  const list = await ok(apiRequest(admin, 'GET', `/api/v1/namespaces/${ns}/events?fieldSelector=involvedObject.name=${name}`), 'list events');
  return (list as { items: k8s.CoreV1Event[] }).items;
}

/** eventsFor once there is at least one: the agent records its Event just after the status write a test waits for. */
export async function eventsWhenRecorded(admin: string, ns: string, name: string, timeoutMs = 10000): Promise<k8s.CoreV1Event[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await eventsFor(admin, ns, name);
    if (events.length || Date.now() > deadline) return events;
    await sleep(100);
  }
}

/** A Restore as the user creates it (the operator's dispatch is dispatchRestore). */
export async function createRestore(admin: string, ns: string, name: string, checkpointName: string, timeoutSeconds?: number): Promise<Restore> {
  return (await ok(
    apiRequest(admin, 'POST', `/apis/cryopod.io/v1alpha1/namespaces/${ns}/restores`, {
      apiVersion: API_VERSION,
      kind: 'Restore',
      metadata: { name, namespace: ns },
      spec: { checkpointName, ...(timeoutSeconds ? { timeoutSeconds } : {}) },
    }),
    'create restore',
  )) as Restore;
}

/** What the operator does once it made the restore pod: label for the node, status Dispatched + podName. */
export async function dispatchRestore(admin: string, r: Restore, podName: string, node: string): Promise<Restore> {
  const base = `/apis/cryopod.io/v1alpha1/namespaces/${r.metadata.namespace}/restores/${r.metadata.name}`;
  const labelled = (await ok(apiRequest(admin, 'PUT', base, { ...r, metadata: { ...r.metadata, labels: { ...r.metadata.labels, [NODE_LABEL]: node } } }), 'label restore')) as Restore;
  const now = new Date().toISOString();
  labelled.status = {
    phase: 'Dispatched',
    podName,
    nodeName: node,
    dispatchedAt: now,
    conditions: [{ type: 'Dispatched', status: 'True', reason: 'Dispatched', message: `pod ${podName} created on node ${node}; dispatched to its agent`, lastTransitionTime: now }],
  };
  return (await ok(apiRequest(admin, 'PUT', `${base}/status`, labelled), 'dispatch restore')) as Restore;
}

export async function getRestore(admin: string, ns: string, name: string): Promise<Restore> {
  return (await ok(apiRequest(admin, 'GET', `/apis/cryopod.io/v1alpha1/namespaces/${ns}/restores/${name}`), 'get restore')) as Restore;
}

export async function waitForRestorePhase(admin: string, ns: string, name: string, phases: string[], timeoutMs = 60000): Promise<Restore> {
  return waitForObjectPhase(`restore ${ns}/${name}`, () => getRestore(admin, ns, name), phases, timeoutMs);
}

/** Creates a Pod object as given (e.g. operator/restore-pod.ts's restore pod) and returns it. */
export async function createPodObject(admin: string, pod: Record<string, unknown>): Promise<k8s.V1Pod> {
  const ns = (pod.metadata as { namespace: string }).namespace;
  return (await ok(apiRequest(admin, 'POST', `/api/v1/namespaces/${ns}/pods`, pod), 'create pod')) as k8s.V1Pod;
}
