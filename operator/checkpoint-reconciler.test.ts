/**
 * The Checkpoint reconciler's decisions over an in-memory client and a clock the test moves (reconcileN);
 * operator/test/checkpoint.test.ts shows the same against a real API server.
 */
import type { Checkpoint } from '../crds/types';
import { CheckpointReconciler } from './checkpoint-reconciler';
import { crPath, podPath } from './kube/paths';
import { fakeCtx, reconcileN } from './test/test-fake-client';

const NS = 'team-a';
const KEY = `${NS}/ck`;

function setup(opts: { pod?: { nodeName?: string; containers?: string[] } | null; spec?: Partial<Checkpoint['spec']>; status?: Checkpoint['status'] } = {}) {
  const t = fakeCtx({ agentClaimTimeoutSeconds: 30, pollSeconds: 5 });
  if (opts.pod !== null) {
    const p = opts.pod ?? { nodeName: 'node-a' };
    t.fake.seed(podPath(NS), { metadata: { name: 'web' }, spec: { nodeName: p.nodeName, containers: (p.containers ?? ['app']).map((name) => ({ name })) } });
  }
  t.fake.seed(crPath('checkpoints', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'ck', namespace: NS }, spec: { podName: 'web', timeoutSeconds: 300, ...opts.spec }, ...(opts.status ? { status: opts.status } : {}) });
  const get = () => t.fake.get<Checkpoint>(crPath('checkpoints', NS, 'ck'));
  return { ...t, get, r: new CheckpointReconciler(t.ctx) };
}

test('Pending → finalizer, node label, Dispatched; no claim within the claim timeout → Failed/AgentUnavailable; then nothing', async () => {
  const { r, get, fake, clock } = setup();
  const t0 = clock.now;
  const asked = await reconcileN(r, KEY, 5, clock);
  expect(asked).toEqual([30000, undefined]); // dispatch asks to look at the claim deadline; the failure asks nothing
  const ck = await get();
  expect(ck.metadata.finalizers).toEqual(['cryopod.io/images']);
  expect(ck.metadata.labels).toEqual({ 'cryopod.io/node': 'node-a' });
  expect(ck.status).toMatchObject({ phase: 'Failed', nodeName: 'node-a', dispatchedAt: new Date(t0).toISOString(), finishedAt: new Date(t0 + 30000).toISOString() });
  // Dispatched keeps its place before Ready; its transition time is the dispatch's.
  expect(ck.status!.conditions!.map((c) => [c.type, c.status, c.reason, c.lastTransitionTime])).toEqual([
    ['Dispatched', 'True', 'Dispatched', new Date(t0).toISOString()],
    ['Ready', 'False', 'AgentUnavailable', new Date(t0 + 30000).toISOString()],
  ]);
  expect(fake.eventReasons(NS, 'ck')).toEqual(['Dispatched', 'AgentUnavailable']);

  // A finished checkpoint reconciled again: no write, no Event.
  const writes = fake.writes.length;
  await reconcileN(r, KEY, 3, clock);
  expect(fake.writes.length).toBe(writes);
});

test('a rerun before anything changed writes nothing and records no second Event', async () => {
  const { r, get, fake } = setup();
  expect(await r.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  const rv = (await get()).metadata.resourceVersion;
  const writes = fake.writes.length;
  expect(await r.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 }); // same instant: the same deadline
  expect((await get()).metadata.resourceVersion).toBe(rv);
  expect(fake.writes.length).toBe(writes);
  expect(fake.eventReasons(NS, 'ck')).toEqual(['Dispatched']);
});

test('claimed by an agent before the claim deadline: not failed at it; Failed/Timeout at spec.timeoutSeconds', async () => {
  const { r, get, fake, clock, ctx } = setup();
  const created = clock.now;
  await r.reconcile(KEY);
  const ck = await get();
  await fake.patch(crPath('checkpoints', NS, 'ck', 'status'), { status: { ...ck.status, phase: 'Running', claimedBy: 'node-a/agent/1' } });
  clock.now += 30000; // the claim deadline
  expect(await r.reconcile(KEY)).toEqual({ requeueAfterMs: 270000 }); // only the checkpoint's own deadline is left
  expect((await get()).status?.phase).toBe('Running');
  clock.now = created + 300000;
  expect(await r.reconcile(KEY)).toBeUndefined();
  const failed = await get();
  expect(failed.status?.phase).toBe('Failed');
  expect(failed.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'Timeout' });
  expect(failed.status?.conditions?.find((c) => c.type === 'Ready')?.message).toMatch(/spec\.timeoutSeconds=300 \(phase was Running\)/);
  expect(fake.eventReasons(NS, 'ck')).toEqual(['Dispatched', 'Timeout']);
  expect((await ctx.metrics.checkpoints.get()).values).toEqual([{ labels: { result: 'succeeded' }, value: 0 }, { labels: { result: 'failed' }, value: 1 }]);
  // By reason: this one Timeout, every other reason at 0 (present, so that increase() sees a first failure).
  const failures = (await ctx.metrics.failures.get()).values.filter((v) => v.labels.kind === 'checkpoint');
  expect(failures.filter((v) => v.value > 0)).toEqual([{ labels: { kind: 'checkpoint', reason: 'Timeout' }, value: 1 }]);
  expect(failures.map((v) => v.labels.reason)).toEqual(expect.arrayContaining(['PodNotFound', 'AgentUnavailable', 'DumpFailed', 'AgentRestarted']));
});

test('a pod that is not scheduled yet: Pending/PodNotScheduled, looked at again every pollSeconds, dispatched once it is', async () => {
  const { r, get, fake, clock } = setup({ pod: { nodeName: undefined } });
  expect(await reconcileN(r, KEY, 2, clock)).toEqual([5000, 5000]);
  const pending = await get();
  expect(pending.status?.phase).toBe('Pending');
  expect(pending.status?.conditions).toEqual([expect.objectContaining({ type: 'Dispatched', status: 'False', reason: 'PodNotScheduled' })]);
  expect(fake.eventReasons(NS, 'ck')).toEqual(['PodNotScheduled']); // the second look changed nothing
  await fake.patch(podPath(NS, 'web'), { spec: { nodeName: 'node-b' } });
  expect(await r.reconcile(KEY)).toEqual({ requeueAfterMs: 30000 });
  const ck = await get();
  expect(ck.status).toMatchObject({ phase: 'Dispatched', nodeName: 'node-b' });
  expect(ck.status?.conditions).toEqual([expect.objectContaining({ type: 'Dispatched', status: 'True', reason: 'Dispatched' })]);
});

test.each([
  ['no pod', { pod: null }, 'PodNotFound', /pod team-a\/web does not exist/],
  ['a container the pod lacks', { spec: { containers: ['app', 'sidecar'] } }, 'ContainerNotFound', /has no container sidecar/],
] as const)('%s: Failed with the reason on Ready and Dispatched, and a Warning', async (_what, opts, reason, message) => {
  const { r, get, fake, clock } = setup(opts as Parameters<typeof setup>[0]);
  expect(await reconcileN(r, KEY, 3, clock)).toEqual([undefined]);
  const ck = await get();
  expect(ck.status?.phase).toBe('Failed');
  expect(ck.status?.conditions?.map((c) => [c.type, c.reason])).toEqual([
    ['Ready', reason],
    ['Dispatched', reason],
  ]);
  expect(ck.status?.conditions?.[0].message).toMatch(message);
  expect(ck.metadata.labels?.['cryopod.io/node']).toBeUndefined();
  expect(fake.eventReasons(NS, 'ck')).toEqual([reason]);
});

test('deleted: the finalizer removes the images and lets the object go', async () => {
  const removed: string[] = [];
  const t = fakeCtx({}, { remove: async (loc: string) => (removed.push(loc), 'removed' as const) });
  t.fake.seed(crPath('checkpoints', NS), { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'ck', namespace: NS, finalizers: ['cryopod.io/images'] }, spec: { podName: 'web' }, status: { phase: 'Succeeded', imageLocation: 'file:///images/team-a/ck-1' } });
  await t.fake.delete(crPath('checkpoints', NS, 'ck'));
  expect(await new CheckpointReconciler(t.ctx).reconcile(KEY)).toBeUndefined();
  expect(removed).toEqual(['file:///images/team-a/ck-1']);
  await expect(t.fake.get(crPath('checkpoints', NS, 'ck'))).rejects.toThrow(/404/);
  expect(t.fake.eventReasons(NS, 'ck')).toEqual(['ImagesDeleted']);
});
