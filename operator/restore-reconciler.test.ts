/**
 * The Restore reconciler's decisions over an in-memory client and a clock the test moves (reconcileN);
 * operator/test/restore.test.ts shows the same against a real API server.
 */
import type { Checkpoint, Restore } from '../crds/types';
import { crPath, podPath } from './kube/paths';
import { RestoreReconciler } from './restore-reconciler';
import { StorageError } from './storage';
import { fakeCtx, reconcileN } from './test/test-fake-client';

const NS = 'team-a';
const KEY = `${NS}/r`;
const LOCATION = 'file:///images/team-a/ck-1';
const SAVED = { metadata: { name: 'web', labels: { app: 'web' } }, spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'busybox:1.36' }] } };

function setup(opts: { checkpoint?: Checkpoint['status'] | null; spec?: Partial<Restore['spec']>; readPod?: () => Promise<Record<string, unknown>> } = {}) {
  const t = fakeCtx({ agentClaimTimeoutSeconds: 30, pollSeconds: 5 }, { readPod: opts.readPod ?? (async () => SAVED) });
  for (const node of ['node-a', 'node-b']) t.fake.seed('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node, labels: { 'kubernetes.io/hostname': node } }, spec: {} });
  if (opts.checkpoint !== null) {
    t.fake.seed(crPath('checkpoints', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'ck', namespace: NS }, spec: { podName: 'web' }, status: opts.checkpoint ?? { phase: 'Succeeded', nodeName: 'node-a', imageLocation: LOCATION } });
  }
  const r = t.fake.seed(crPath('restores', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', metadata: { name: 'r', namespace: NS }, spec: { checkpointName: 'ck', timeoutSeconds: 300, ...opts.spec } }) as Restore;
  const get = () => t.fake.get<Restore>(crPath('restores', NS, 'r'));
  return { ...t, get, uid: r.metadata.uid!, rec: new RestoreReconciler(t.ctx) };
}

const ready = (r: Restore) => r.status?.conditions?.find((c) => c.type === 'Ready');

test('a Succeeded checkpoint: the restore pod is made (owned, pinned), then label and Dispatched; no claim → AgentUnavailable', async () => {
  const { rec, get, fake, clock, uid } = setup();
  const t0 = clock.now;
  expect(await reconcileN(rec, KEY, 5, clock)).toEqual([30000, undefined]);
  const pod = await fake.get<{ metadata: { labels: Record<string, string>; ownerReferences: Array<{ uid: string; controller: boolean }> }; spec: { nodeName: string } }>(podPath(NS, 'ck-restored'));
  expect(pod.spec.nodeName).toBe('node-a');
  expect(pod.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Restore', uid, controller: true })]);
  expect(pod.metadata.labels).toMatchObject({ app: 'web', 'cryopod.io/restore': 'r', 'cryopod.io/node': 'node-a' });
  const r = await get();
  expect(r.metadata.labels).toEqual({ 'cryopod.io/node': 'node-a' });
  expect(r.status).toMatchObject({ phase: 'Failed', podName: 'ck-restored', nodeName: 'node-a', dispatchedAt: new Date(t0).toISOString() });
  expect(r.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
    ['Dispatched', 'True', 'Dispatched'],
    ['Ready', 'False', 'AgentUnavailable'],
  ]);
  expect(fake.eventReasons(NS, 'r')).toEqual(['Dispatched', 'AgentUnavailable']);
  expect(fake.writes.filter((w) => w.startsWith(`POST ${podPath(NS)}`))).toHaveLength(1); // one pod, ever
});

test('spec.targetNode and spec.newPodName win over the checkpoint\'s node and the default name', async () => {
  const { rec, get, fake } = setup({ spec: { targetNode: 'node-b', newPodName: 'web-2' } });
  expect(await rec.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  expect((await fake.get<{ spec: { nodeName: string } }>(podPath(NS, 'web-2'))).spec.nodeName).toBe('node-b');
  expect((await get()).status).toMatchObject({ phase: 'Dispatched', podName: 'web-2', nodeName: 'node-b' });
});

test('a checkpoint not finished yet: Pending/CheckpointNotReady every pollSeconds, one Event; dispatched once it succeeds', async () => {
  const { rec, get, fake, clock } = setup({ checkpoint: { phase: 'Running' } });
  expect(await reconcileN(rec, KEY, 3, clock)).toEqual([5000, 5000, 5000]);
  expect((await get()).status?.conditions).toEqual([expect.objectContaining({ type: 'Dispatched', status: 'False', reason: 'CheckpointNotReady' })]);
  expect(fake.eventReasons(NS, 'r')).toEqual(['CheckpointNotReady']);
  await fake.patch(crPath('checkpoints', NS, 'ck', 'status'), { status: { phase: 'Succeeded', nodeName: 'node-a', imageLocation: LOCATION } });
  expect(await rec.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  const r = await get();
  expect(r.status?.phase).toBe('Dispatched');
  // The same condition, flipped in place.
  expect(r.status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([['Dispatched', 'True', 'Dispatched']]);
});

test.each([
  ['a missing checkpoint', { checkpoint: null }, 'CheckpointNotFound', /checkpoint team-a\/ck does not exist/],
  ['a failed checkpoint', { checkpoint: { phase: 'Failed' } }, 'CheckpointNotReady', /checkpoint ck failed/],
  ['a checkpoint without images', { checkpoint: { phase: 'Succeeded', nodeName: 'node-a' } }, 'ImageCorrupt', /no status\.imageLocation/],
  ['a pod.json the store refuses', { readPod: async () => { throw new StorageError('pod.json is not a regular file'); } }, 'ImageCorrupt', /not a regular file/],
] as const)('%s: Failed, no pod made', async (_what, opts, reason, message) => {
  const { rec, get, fake, clock } = setup(opts as Parameters<typeof setup>[0]);
  expect(await reconcileN(rec, KEY, 3, clock)).toEqual([undefined]);
  const r = await get();
  expect(r.status?.phase).toBe('Failed');
  expect(ready(r)).toMatchObject({ status: 'False', reason });
  expect(ready(r)?.message).toMatch(message);
  expect(fake.writes.some((w) => w.startsWith(`POST ${podPath(NS)}`))).toBe(false);
  expect(fake.eventReasons(NS, 'r')).toEqual([reason]);
});

test('the restore pod already exists: ours (a crash after creating it) is adopted; a stranger\'s fails the Restore', async () => {
  const ours = setup();
  ours.fake.seed(podPath(NS), { metadata: { name: 'ck-restored', ownerReferences: [{ apiVersion: 'cryopod.io/v1alpha1', kind: 'Restore', name: 'r', uid: ours.uid }] }, spec: {} });
  expect(await ours.rec.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  expect((await ours.get()).status?.phase).toBe('Dispatched');

  const theirs = setup();
  theirs.fake.seed(podPath(NS), { metadata: { name: 'ck-restored' }, spec: {} });
  expect(await theirs.rec.reconcile(KEY)).toBeUndefined();
  const r = await theirs.get();
  expect(ready(r)).toMatchObject({ reason: 'RestoreFailed' });
  expect(ready(r)?.message).toMatch(/already exists and does not belong to this Restore/);
});

test('claimed (Running): left to its agent until a grace period after spec.timeoutSeconds, then Failed/Timeout', async () => {
  const { rec, get, fake, clock } = setup();
  const created = clock.now;
  await rec.reconcile(KEY);
  await fake.patch(crPath('restores', NS, 'r', 'status'), { status: { ...(await get()).status, phase: 'Running', claimedBy: 'node-a/agent/1' } });
  clock.now = created + 300000; // the Restore's own deadline: the agent may be mid-morph
  expect(await rec.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  expect((await get()).status?.phase).toBe('Running');
  clock.now += 30000;
  expect(await rec.reconcile(KEY)).toBeUndefined();
  const r = await get();
  expect(r.status?.phase).toBe('Failed');
  expect(ready(r)).toMatchObject({ reason: 'Timeout' });
  expect(ready(r)?.message).toMatch(/phase was Running/);
});

test('a finished Restore is counted once and never written again', async () => {
  const { rec, fake, clock, ctx } = setup({ checkpoint: null });
  await rec.reconcile(KEY);
  const writes = fake.writes.length;
  await reconcileN(rec, KEY, 3, clock);
  await rec.reconcile(KEY);
  expect(fake.writes.length).toBe(writes);
  expect((await ctx.metrics.restores.get()).values).toEqual([{ labels: { result: 'succeeded' }, value: 0 }, { labels: { result: 'failed' }, value: 1 }]);
  const failed = (await ctx.metrics.failures.get()).values.filter((v) => v.value > 0);
  expect(failed).toEqual([{ labels: { kind: 'restore', reason: 'CheckpointNotFound' }, value: 1 }]);
});

test('the target node is read first: missing → NodeNotFound, its taint not tolerated → PlacementConflict; no pod either way', async () => {
  const gone = setup({ spec: { targetNode: 'node-gone' } });
  expect(await gone.rec.reconcile(KEY)).toBeUndefined();
  expect(ready(await gone.get())).toMatchObject({ status: 'False', reason: 'NodeNotFound', message: 'node node-gone does not exist' });
  expect(gone.fake.writes.filter((w) => w.startsWith(`POST ${podPath(NS)}`))).toHaveLength(0);

  const tainted = setup({ spec: { targetNode: 'node-t' } });
  tainted.fake.seed('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-t', labels: {} }, spec: { taints: [{ key: 'gpu', effect: 'NoExecute' }] } });
  expect(await tainted.rec.reconcile(KEY)).toBeUndefined();
  expect(ready(await tainted.get())).toMatchObject({ status: 'False', reason: 'PlacementConflict' });
  expect(ready(await tainted.get())!.message).toMatch(/taint gpu:NoExecute, which the pod does not tolerate/);
  expect(tainted.fake.writes.filter((w) => w.startsWith(`POST ${podPath(NS)}`))).toHaveLength(0);
  expect(tainted.fake.eventReasons(NS, 'r')).toEqual(['PlacementConflict']);
});
