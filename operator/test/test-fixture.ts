/**
 * One real control plane per test file, prepared as the chart would leave it: the CRDs applied from crds/
 * with kubectl, the namespace cryopod-system, and the ServiceAccounts, ClusterRoles and bindings exactly as
 * `helm template` renders them. The operator runs in-process with a client certificate for its
 * ServiceAccount identity, so every request it makes is held to the chart's RBAC.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { startControlPlane, ensureTools, waitFor as pollUntil, type ControlPlane, type Tools } from '../../testenv';
import type { Checkpoint } from '../../crds/types';
import { DEFAULTS, type OperatorConfig } from '../config';
import type { TestHooks } from '../context';
import { KubeClient } from '../kube/client';
import { crPath, eventsPath, podPath } from '../kube/paths';
import { Operator, loadKubeConfig } from '../operator';

const run = promisify(execFile);
const REPO = path.join(__dirname, '..', '..');
export const SYSTEM_NS = 'cryopod-system';
export const OPERATOR_USER = `system:serviceaccount:${SYSTEM_NS}:cryopod-operator`;
export const AGENT_USER = `system:serviceaccount:${SYSTEM_NS}:cryopod-node-agent`;
const SA_GROUPS = ['system:serviceaccounts', `system:serviceaccounts:${SYSTEM_NS}`];

export interface Env {
  cp: ControlPlane;
  tools: Tools;
  admin: KubeClient;
  agent: KubeClient;
  operatorKubeconfig: string;
  agentKubeconfig: string;
  /** The image storage root, inside tmpDir (which env.stop() removes, with anything else a test puts there). */
  storageRoot: string;
  tmpDir: string;
  operators: Operator[];
  startOperator(cfg?: Partial<OperatorConfig>, hooks?: TestHooks): Promise<Operator>;
  kubectl(args: string[], input?: string, kubeconfig?: string): Promise<string>;
  stop(): Promise<void>;
}

export async function setup(): Promise<Env> {
  const [cp, tools] = await Promise.all([startControlPlane(), ensureTools()]);
  const tmpDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cryopod-optest-'));
  const storageRoot = path.join(tmpDir, 'images');
  await fs.mkdir(storageRoot);
  const kubectl = async (args: string[], input?: string, kubeconfig = cp.adminKubeconfig): Promise<string> => {
    const p = run(tools.kubectl, ['--kubeconfig', kubeconfig, ...args], { maxBuffer: 16 << 20 });
    if (input !== undefined) p.child.stdin!.end(input);
    return (await p).stdout;
  };
  const operators: Operator[] = [];
  try {
    await kubectl(['apply', '-f', path.join(REPO, 'crds')]);
    await kubectl(['wait', '--for=condition=Established', '--timeout=30s', 'crd/checkpoints.cryopod.io', 'crd/restores.cryopod.io']);
    await kubectl(['create', 'namespace', SYSTEM_NS]);
    const { stdout: rendered } = await run(tools.helm, ['template', 'cryopod', path.join(REPO, 'helm', 'cryopod'), '--namespace', SYSTEM_NS, '--show-only', 'templates/operator-rbac.yaml', '--show-only', 'templates/node-agent-rbac.yaml']);
    await kubectl(['apply', '-f', '-'], rendered);
    const [operatorKubeconfig, agentKubeconfig] = await Promise.all([cp.kubeconfigFor(OPERATOR_USER, SA_GROUPS), cp.kubeconfigFor(AGENT_USER, SA_GROUPS)]);
    const env: Env = {
      cp,
      tools,
      admin: new KubeClient(loadKubeConfig(cp.adminKubeconfig)),
      agent: new KubeClient(loadKubeConfig(agentKubeconfig)),
      operatorKubeconfig,
      agentKubeconfig,
      storageRoot,
      tmpDir,
      operators,
      kubectl,
      async startOperator(cfg = {}, hooks) {
        const op = new Operator(
          { ...DEFAULTS, kubeconfig: operatorKubeconfig, storageRoot, metricsPort: 0, agentClaimTimeoutSeconds: 3, pollSeconds: 1, ...cfg },
          { hooks, log: (m) => process.env.CRYOPOD_TEST_LOG && console.log(m) },
        );
        operators.push(op);
        await op.start();
        return op;
      },
      async stop() {
        await Promise.all(operators.map((o) => o.stop(false)));
        await cp.stop();
        await fs.rm(tmpDir, { recursive: true, force: true });
      },
    };
    return env;
  } catch (err) {
    await cp.stop();
    await fs.rm(tmpDir, { recursive: true, force: true });
    throw err;
  }
}

export async function createNamespace(c: KubeClient, name: string): Promise<void> {
  await c.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

/** A pod as the scheduler would leave it (spec.nodeName set); no kubelet runs, so it stays Pending. */
export async function createPod(c: KubeClient, ns: string, name: string, nodeName?: string): Promise<{ metadata: { uid: string } }> {
  return c.create(podPath(ns), {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'app', image: 'busybox:1.36', command: ['sleep', '3600'] }] },
  });
}

/**
 * A Node object (no kubelet behind it): what the operator reads to check a Restore's placement. The API
 * server taints every new node node.kubernetes.io/not-ready:NoSchedule (TaintNodesByCondition) until its
 * kubelet reports Ready; there is no kubelet here, so the taints are then set to the given ones, as a
 * ready node's would be.
 */
export async function createNode(c: KubeClient, name: string, labels: Record<string, string> = {}, spec: { taints?: unknown[]; unschedulable?: boolean } = {}): Promise<void> {
  await c.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } }, spec });
  await c.patch(`/api/v1/nodes/${name}`, { spec: { taints: spec.taints ?? null } });
}

export async function createCheckpoint(c: KubeClient, ns: string, name: string, spec: Partial<Checkpoint['spec']> & { podName: string }): Promise<Checkpoint> {
  return c.create(crPath('checkpoints', ns), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name, namespace: ns }, spec });
}

export async function getCheckpoint(c: KubeClient, ns: string, name: string): Promise<Checkpoint> {
  return c.get(crPath('checkpoints', ns, name));
}

export interface Event {
  reason: string;
  type: string;
  message: string;
  count?: number;
  involvedObject: { kind: string; name: string; uid: string };
}

export async function eventsFor(c: KubeClient, ns: string, name: string, reason?: string): Promise<Event[]> {
  const sel = [`involvedObject.name=${name}`, ...(reason ? [`reason=${reason}`] : [])].join(',');
  const list = await c.get<{ items: Event[] }>(`${eventsPath(ns)}?fieldSelector=${encodeURIComponent(sel)}`);
  return list.items;
}

/** eventsFor once there is at least one: an Event is recorded just after the status write a test waits for. */
export const eventsWhenRecorded = (c: KubeClient, ns: string, name: string, reason?: string): Promise<Event[]> =>
  waitFor(`an Event${reason ? ` ${reason}` : ''} about ${name}`, async () => {
    const events = await eventsFor(c, ns, name, reason);
    return events.length > 0 && events;
  });

/** Polls (every 100 ms: these are API calls) until fn returns a value other than undefined/false. */
export const waitFor = <T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20000): Promise<T> => pollUntil(what, fn, timeoutMs, 100);

/**
 * Records the reconciles of an operator (pass .hooks to startOperator): a test waits for the operator to
 * have looked at an object since a change it made, instead of sleeping.
 */
export function reconcileLog(extra: TestHooks = {}) {
  const runs: Array<{ key: string; startedAt: number }> = [];
  return {
    hooks: { ...extra, reconciled: (_kind: string, key: string, startedAt: number) => void runs.push({ key, startedAt }) } as TestHooks,
    /** How many reconciles of key have finished. */
    count: (key: string) => runs.filter((r) => r.key === key).length,
    /** Resolves once a reconcile of key that started at or after since (ms) has finished. */
    since: (key: string, since: number, timeoutMs = 20000) =>
      waitFor(`a reconcile of ${key} started after ${new Date(since).toISOString()}`, async () => runs.some((r) => r.key === key && r.startedAt >= since), timeoutMs),
  };
}

/** What the node agent does, as the agent identity: claim with optimistic concurrency, then report. */
export async function agentClaim(agent: KubeClient, ck: Checkpoint, node: string): Promise<Checkpoint> {
  return agent.patch(crPath('checkpoints', ck.metadata.namespace, ck.metadata.name, 'status'), {
    metadata: { resourceVersion: ck.metadata.resourceVersion },
    status: { ...ck.status, phase: 'Running', claimedBy: `${node}/cryopod-node-agent-test`, startedAt: new Date().toISOString() },
  });
}

export async function agentSucceed(agent: KubeClient, ck: Checkpoint, imageLocation: string, finishedAt = new Date()): Promise<Checkpoint> {
  const now = finishedAt.toISOString();
  return agent.patch(crPath('checkpoints', ck.metadata.namespace, ck.metadata.name, 'status'), {
    metadata: { resourceVersion: ck.metadata.resourceVersion },
    status: {
      ...ck.status,
      phase: 'Succeeded',
      finishedAt: now,
      imageLocation,
      imageSizeBytes: 4096,
      containers: [{ name: 'app', pids: [4242], pages: 1, bytes: 4096 }],
      durations: { freezeSeconds: 0.01, dumpSeconds: 0.02, uploadSeconds: 0 },
      conditions: [...(ck.status?.conditions ?? []), { type: 'Ready', status: 'True', reason: 'Succeeded', message: 'images written', lastTransitionTime: now }],
    },
  });
}
