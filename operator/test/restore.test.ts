/**
 * The Restore reconciler against the real API server: the new Pod is made from the pod.json the agent
 * saved with the images, pinned to the target node, stub commands, init container, owned by the Restore;
 * a missing or failed checkpoint ends in a clear condition.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Restore } from '../../crds/types';
import { crPath, podPath } from '../kube/paths';
import { agentClaim, agentSucceed, createCheckpoint, createNamespace, createNode, createPod, eventsWhenRecorded, getCheckpoint, reconcileLog, setup, waitFor, type Env } from './test-fixture';

let env: Env;
const NS = 'restores';
beforeAll(async () => {
  env = await setup();
  await createNamespace(env.admin, NS);
  for (const n of ['node-a', 'node-b']) await createNode(env.admin, n);
});
afterAll(() => env?.stop());

const createRestore = (name: string, spec: Record<string, unknown>) =>
  env.admin.create<Restore>(crPath('restores', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', metadata: { name }, spec });
const getRestore = (name: string) => env.admin.get<Restore>(crPath('restores', NS, name));
const finished = (name: string) =>
  waitFor(`${name} finished`, async () => {
    const r = await getRestore(name);
    return (r.status?.phase === 'Failed' || r.status?.phase === 'Dispatched') && r;
  });

test('a Restore makes the new pod from pod.json: pinned, stubbed, owned by the Restore', async () => {
  const op = await env.startOperator({ stubImage: 'cryopod:test', stubPath: '/opt/cryopod/cryopod-stub' });
  const original = await createPod(env.admin, NS, 'web', 'node-a');
  await createCheckpoint(env.admin, NS, 'web-ck', { podName: 'web' });
  const ck = await waitFor('Dispatched', async () => {
    const c = await getCheckpoint(env.admin, NS, 'web-ck');
    return c.status?.phase === 'Dispatched' && c;
  });
  // What the agent stores with the images: the Pod as the API server returned it.
  const dir = path.join(env.storageRoot, NS, `web-ck-${ck.metadata.uid}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'pod.json'), JSON.stringify(await env.admin.get(podPath(NS, 'web'))));
  await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-a'), pathToFileURL(dir).href);

  const created = await createRestore('web-r', { checkpointName: 'web-ck', targetNode: 'node-b' });
  const r = await finished('web-r');
  expect(r.status).toMatchObject({ phase: 'Dispatched', podName: 'web-ck-restored', nodeName: 'node-b' });
  expect(r.metadata.labels).toMatchObject({ 'cryopod.io/node': 'node-b' });
  expect(r.status!.conditions!.find((c) => c.type === 'Dispatched')).toMatchObject({ status: 'True', reason: 'Dispatched' });

  const pod = await env.admin.get<any>(podPath(NS, 'web-ck-restored')); // eslint-disable-line @typescript-eslint/no-explicit-any
  expect(pod.spec.nodeName).toBe('node-b');
  expect(pod.metadata.ownerReferences).toEqual([{ apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', name: 'web-r', uid: created.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  expect(pod.metadata.labels).toMatchObject({ app: 'web', 'cryopod.io/restore': 'web-r' });
  expect(pod.metadata.annotations).toMatchObject({ 'cryopod.io/checkpoint': 'web-ck', 'cryopod.io/original-pod': 'web' });
  expect(pod.metadata.uid).not.toBe(original.metadata.uid);
  expect(pod.spec.initContainers).toHaveLength(1);
  expect(pod.spec.initContainers[0]).toMatchObject({ name: 'cryopod-stub-install', image: 'cryopod:test', command: ['cp', '/opt/cryopod/cryopod-stub', '/cryopod/cryopod-stub'] });
  expect(pod.spec.containers.map((c: { command: string[] }) => c.command)).toEqual([['/cryopod/cryopod-stub']]);
  expect(pod.spec.containers[0].image).toBe('busybox:1.36');
  expect(pod.spec.containers[0].volumeMounts).toContainEqual({ name: 'cryopod-stub', mountPath: '/cryopod', readOnly: true });
  expect(pod.spec.volumes).toContainEqual({ name: 'cryopod-stub', emptyDir: {} });
  expect(pod.spec.hostname).toBe('web');
  expect(pod.spec.restartPolicy).toBe('Never');
  expect(await eventsWhenRecorded(env.admin, NS, 'web-r', 'Dispatched')).toHaveLength(1);

  // A second operator (a restart) neither makes a second pod nor fails on the existing one.
  await op.stop();
  const log = reconcileLog();
  const since = Date.now();
  const op2 = await env.startOperator({}, log.hooks);
  await log.since(`${NS}/web-r`, since); // its first list reports web-r: one full reconcile of it
  const pods = await env.admin.get<{ items: unknown[] }>(`${podPath(NS)}?labelSelector=cryopod.io%2Frestore%3Dweb-r`);
  expect(pods.items).toHaveLength(1);
  await op2.stop();
});

test('a Restore of a missing checkpoint fails with CheckpointNotFound; of a failed one with CheckpointNotReady', async () => {
  const op = await env.startOperator();
  await createRestore('no-ck', { checkpointName: 'nothing-here' });
  const r = await finished('no-ck');
  expect(r.status!.phase).toBe('Failed');
  expect(r.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'CheckpointNotFound' });
  expect(await eventsWhenRecorded(env.admin, NS, 'no-ck', 'CheckpointNotFound')).toHaveLength(1);

  await createCheckpoint(env.admin, NS, 'doomed', { podName: 'does-not-exist' });
  await waitFor('doomed Failed', async () => (await getCheckpoint(env.admin, NS, 'doomed')).status?.phase === 'Failed');
  await createRestore('from-doomed', { checkpointName: 'doomed' });
  const r2 = await finished('from-doomed');
  expect(r2.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'CheckpointNotReady' });
  await op.stop();
});

test('a pod.json outside the namespace directory is refused (ImageCorrupt), no pod is made', async () => {
  const op = await env.startOperator();
  await createPod(env.admin, NS, 'other', 'node-a');
  await createCheckpoint(env.admin, NS, 'sneaky', { podName: 'other' });
  const ck = await waitFor('Dispatched', async () => {
    const c = await getCheckpoint(env.admin, NS, 'sneaky');
    return c.status?.phase === 'Dispatched' && c;
  });
  const foreign = path.join(env.storageRoot, 'another-tenant', 'x');
  await fs.mkdir(foreign, { recursive: true });
  await fs.writeFile(path.join(foreign, 'pod.json'), JSON.stringify({ spec: { containers: [{ name: 'a', image: 'a' }] } }));
  await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-a'), pathToFileURL(foreign).href);
  await createRestore('sneaky-r', { checkpointName: 'sneaky' });
  const r = await finished('sneaky-r');
  expect(r.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'ImageCorrupt' });
  expect(r.status!.conditions!.find((c) => c.type === 'Ready')!.message).toMatch(/is outside/);
  await expect(env.admin.get(podPath(NS, 'sneaky-restored'))).rejects.toThrow(/404/);
  await op.stop();
});

test('operator killed after creating the pod: the next one adopts its own pod once; a stranger pod of that name fails the Restore', async () => {
  await createPod(env.admin, NS, 'api', 'node-a');
  await createCheckpoint(env.admin, NS, 'api-ck', { podName: 'api' });
  const op0 = await env.startOperator();
  const ck = await waitFor('Dispatched', async () => {
    const c = await getCheckpoint(env.admin, NS, 'api-ck');
    return c.status?.phase === 'Dispatched' && c;
  });
  const dir = path.join(env.storageRoot, NS, `api-ck-${ck.metadata.uid}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'pod.json'), JSON.stringify(await env.admin.get(podPath(NS, 'api'))));
  await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-a'), pathToFileURL(dir).href);
  await op0.stop();

  let reached!: () => void;
  const atLabel = new Promise<void>((r) => (reached = r));
  const op1 = await env.startOperator({}, {
    afterDispatchLabel: async (kind) => {
      if (kind !== 'Restore') return;
      reached();
      await new Promise(() => undefined); // hangs forever: op1 is "dead" here
    },
  });
  await createRestore('api-r', { checkpointName: 'api-ck' });
  await atLabel;
  await env.admin.get(podPath(NS, 'api-ck-restored')); // the pod exists, the status does not say so yet
  expect((await getRestore('api-r')).status?.phase).toBeUndefined();
  void op1.stop(false);

  const op2 = await env.startOperator({ agentClaimTimeoutSeconds: 30 });
  const r = await finished('api-r');
  expect(r.status).toMatchObject({ phase: 'Dispatched', podName: 'api-ck-restored' });
  expect(await eventsWhenRecorded(env.admin, NS, 'api-r', 'Dispatched')).toHaveLength(1);

  // A pod of the wanted name that is not ours: refuse, do not touch it.
  await env.admin.create(podPath(NS), { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'taken' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
  await createRestore('api-r2', { checkpointName: 'api-ck', newPodName: 'taken' });
  const r2 = await finished('api-r2');
  expect(r2.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'RestoreFailed' });
  expect(r2.status!.conditions!.find((c) => c.type === 'Ready')!.message).toMatch(/already exists and does not belong to this Restore/);
  const taken = await env.admin.get<{ metadata: { ownerReferences?: unknown[] }; spec: { containers: Array<{ command?: string[] }> } }>(podPath(NS, 'taken'));
  expect(taken.metadata.ownerReferences).toBeUndefined();
  await op2.stop();
});

test('targetNode keeps the pod\'s scheduling constraints: a missing node, an unmatched nodeSelector or an untolerated taint fails the Restore and makes no pod', async () => {
  const op = await env.startOperator();
  await createNode(env.admin, 'node-ssd', { disk: 'ssd' }, { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] });
  await createNode(env.admin, 'node-ssd-open', { disk: 'ssd' });
  await createPod(env.admin, NS, 'db', 'node-a');
  await createCheckpoint(env.admin, NS, 'db-ck', { podName: 'db' });
  const ck = await waitFor('Dispatched', async () => {
    const c = await getCheckpoint(env.admin, NS, 'db-ck');
    return c.status?.phase === 'Dispatched' && c;
  });
  // The saved pod as a tenant wrote it: it may run only on ssd nodes.
  const saved = await env.admin.get<{ spec: Record<string, unknown> }>(podPath(NS, 'db'));
  saved.spec.nodeSelector = { disk: 'ssd' };
  const dir = path.join(env.storageRoot, NS, `db-ck-${ck.metadata.uid}`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'pod.json'), JSON.stringify(saved));
  await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-a'), pathToFileURL(dir).href);

  const refused = async (name: string, targetNode: string, reason: string, message: RegExp) => {
    await createRestore(name, { checkpointName: 'db-ck', targetNode, newPodName: name });
    const r = await finished(name);
    expect(r.status!.phase).toBe('Failed');
    expect(r.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason });
    expect(r.status!.conditions!.find((c) => c.type === 'Ready')!.message).toMatch(message);
    await expect(env.admin.get(podPath(NS, name))).rejects.toThrow(/404/);
  };
  await refused('db-nowhere', 'node-nowhere', 'NodeNotFound', /node node-nowhere does not exist/);
  await refused('db-b', 'node-b', 'PlacementConflict', /nodeSelector disk=ssd does not match node node-b/);
  await refused('db-tainted', 'node-ssd', 'PlacementConflict', /taint dedicated=db:NoSchedule/);

  // A node that satisfies them: the pod is made, bound there, and keeps its nodeSelector.
  await createRestore('db-ok', { checkpointName: 'db-ck', targetNode: 'node-ssd-open', newPodName: 'db-ok' });
  expect((await finished('db-ok')).status!.phase).toBe('Dispatched');
  const pod = await env.admin.get<{ spec: Record<string, unknown> }>(podPath(NS, 'db-ok'));
  expect(pod.spec).toMatchObject({ nodeName: 'node-ssd-open', nodeSelector: { disk: 'ssd' } });
  await op.stop();
});
