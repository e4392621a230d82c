/**
 * The Checkpoint reconciler against a real API server, running as the operator's ServiceAccount identity
 * with the chart's RBAC: dispatch, PodNotFound, AgentUnavailable, the finalizer, and a crash right after
 * the node label was set (the one half-done state a dispatch can leave).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { crPath } from '../kube/paths';
import { agentClaim, agentSucceed, createCheckpoint, createNamespace, createPod, eventsFor, eventsWhenRecorded, getCheckpoint, reconcileLog, setup, waitFor, type Env } from './test-fixture';

let env: Env;
const NS = 'team-a';
beforeAll(async () => {
  env = await setup();
  await createNamespace(env.admin, NS);
});
afterAll(() => env?.stop());

describe('Checkpoint reconciler', () => {
  test('a missing pod ends Failed/PodNotFound with a Warning Event of the same reason', async () => {
    const op = await env.startOperator();
    await createCheckpoint(env.admin, NS, 'ghost', { podName: 'no-such-pod' });
    const ck = await waitFor('Failed', async () => {
      const c = await getCheckpoint(env.admin, NS, 'ghost');
      return c.status?.phase === 'Failed' && c;
    });
    const ready = ck.status!.conditions!.find((c) => c.type === 'Ready')!;
    expect(ready).toMatchObject({ status: 'False', reason: 'PodNotFound' });
    expect(ready.message).toMatch(/pod team-a\/no-such-pod does not exist/);
    expect(ck.status!.observedGeneration).toBe(ck.metadata.generation);
    expect(ck.metadata.finalizers).toEqual(['cryopod.io/images']);
    expect(ck.metadata.labels?.['cryopod.io/node']).toBeUndefined();
    const events = await waitFor('event', async () => {
      const e = await eventsFor(env.admin, NS, 'ghost', 'PodNotFound');
      return e.length > 0 && e;
    });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Warning', involvedObject: { kind: 'Checkpoint', name: 'ghost', uid: ck.metadata.uid } });
    await op.stop();
  });

  test('an unscheduled pod waits (PodNotScheduled), then is dispatched once scheduled', async () => {
    const op = await env.startOperator();
    await createPod(env.admin, NS, 'unscheduled');
    await createCheckpoint(env.admin, NS, 'wait-for-node', { podName: 'unscheduled' });
    await waitFor('PodNotScheduled', async () => (await getCheckpoint(env.admin, NS, 'wait-for-node')).status?.conditions?.some((c) => c.reason === 'PodNotScheduled'));
    expect((await getCheckpoint(env.admin, NS, 'wait-for-node')).status?.phase).toBe('Pending');
    // What the scheduler does: the binding subresource sets spec.nodeName.
    await env.admin.create(`/api/v1/namespaces/${NS}/pods/unscheduled/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'unscheduled' }, target: { kind: 'Node', name: 'node-late' } });
    const ck = await waitFor('Dispatched', async () => {
      const c = await getCheckpoint(env.admin, NS, 'wait-for-node');
      return c.status?.phase === 'Dispatched' && c;
    });
    expect(ck.metadata.labels).toMatchObject({ 'cryopod.io/node': 'node-late' });
    await op.stop();
  });

  test('a pod on a node with no agent: Dispatched, then Failed/AgentUnavailable after the claim timeout', async () => {
    const op = await env.startOperator({ agentClaimTimeoutSeconds: 3 });
    const pod = await createPod(env.admin, NS, 'lonely', 'node-without-agent');
    const t0 = Date.now();
    await createCheckpoint(env.admin, NS, 'lonely-1', { podName: 'lonely' });
    const dispatched = await waitFor('Dispatched', async () => {
      const c = await getCheckpoint(env.admin, NS, 'lonely-1');
      return c.status?.phase === 'Dispatched' && c;
    });
    expect(dispatched.metadata.labels).toMatchObject({ 'cryopod.io/node': 'node-without-agent' });
    expect(dispatched.status).toMatchObject({ nodeName: 'node-without-agent', podUID: pod.metadata.uid });
    expect(dispatched.status!.conditions!.find((c) => c.type === 'Dispatched')).toMatchObject({ status: 'True', reason: 'Dispatched' });
    const failed = await waitFor('AgentUnavailable', async () => {
      const c = await getCheckpoint(env.admin, NS, 'lonely-1');
      return c.status?.phase === 'Failed' && c;
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
    expect(failed.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'AgentUnavailable' });
    expect(failed.status!.dispatchedAt).toBe(dispatched.status!.dispatchedAt);
    expect(await eventsWhenRecorded(env.admin, NS, 'lonely-1', 'AgentUnavailable')).toHaveLength(1);
    await op.stop();
  });

  test('a claimed checkpoint is not timed out by the claim timeout (the agent won the race)', async () => {
    const log = reconcileLog();
    const op = await env.startOperator({ agentClaimTimeoutSeconds: 2 }, log.hooks);
    await createPod(env.admin, NS, 'busy', 'node-b');
    await createCheckpoint(env.admin, NS, 'busy-1', { podName: 'busy' });
    const ck = await waitFor('Dispatched', async () => {
      const c = await getCheckpoint(env.admin, NS, 'busy-1');
      return c.status?.phase === 'Dispatched' && c;
    });
    await agentClaim(env.agent, ck, 'node-b');
    // Watched until the operator has reconciled it after the claim timeout (it planned that look when it
    // dispatched; the earliest planned look wins, so the claim does not cancel it).
    await log.since(`${NS}/busy-1`, Date.parse(ck.status!.dispatchedAt!) + 2000);
    expect((await getCheckpoint(env.admin, NS, 'busy-1')).status?.phase).toBe('Running');
    await op.stop();
  });

  test('operator killed between label and status: the next one dispatches exactly once; the stale one cannot overwrite', async () => {
    let reached!: () => void;
    const atLabel = new Promise<void>((r) => (reached = r));
    let resume!: () => void;
    const gate = new Promise<void>((r) => (resume = r));
    const op1Log = reconcileLog({
      afterDispatchLabel: async (_kind, key) => {
        if (key !== `${NS}/crash-1`) return;
        reached();
        await gate; // op1 hangs here, mid-reconcile
      },
    });
    const op1 = await env.startOperator({ agentClaimTimeoutSeconds: 4 }, op1Log.hooks);
    await createPod(env.admin, NS, 'crashy', 'node-c');
    await createCheckpoint(env.admin, NS, 'crash-1', { podName: 'crashy' });
    await atLabel;
    const hungRuns = op1Log.count(`${NS}/crash-1`); // the hung run is not among them yet
    const half = await getCheckpoint(env.admin, NS, 'crash-1');
    expect(half.metadata.labels).toMatchObject({ 'cryopod.io/node': 'node-c' });
    expect(half.status?.phase).toBeUndefined(); // label set, status not written: no agent acts on it yet
    const stopped = op1.stop(false); // "killed": watches end, the hung reconcile is abandoned

    const op2 = await env.startOperator({ agentClaimTimeoutSeconds: 4 });
    const dispatched = await waitFor('Dispatched by op2', async () => {
      const c = await getCheckpoint(env.admin, NS, 'crash-1');
      return c.status?.phase === 'Dispatched' && c;
    });
    // The zombie wakes up and tries to write the status it computed before: 409, no second dispatch.
    resume();
    await stopped;
    await waitFor('the zombie reconcile to end', async () => op1Log.count(`${NS}/crash-1`) > hungRuns);
    // A graceful restart while Dispatched: the claim timeout still fires, from the same dispatchedAt.
    await op2.stop();
    const op3 = await env.startOperator({ agentClaimTimeoutSeconds: 4 });
    const failed = await waitFor('AgentUnavailable', async () => {
      const c = await getCheckpoint(env.admin, NS, 'crash-1');
      return c.status?.phase === 'Failed' && c;
    });
    expect(failed.status!.dispatchedAt).toBe(dispatched.status!.dispatchedAt);
    expect(failed.status!.conditions!.find((c) => c.type === 'Ready')!.reason).toBe('AgentUnavailable');
    expect(await eventsWhenRecorded(env.admin, NS, 'crash-1', 'Dispatched')).toHaveLength(1);
    expect(await eventsWhenRecorded(env.admin, NS, 'crash-1', 'AgentUnavailable')).toHaveLength(1);
    await op3.stop();
  });

  test('deleting a Checkpoint deletes its images (finalizer), keeps them with retainImages, never touches a path outside the root', async () => {
    const op = await env.startOperator();
    await createPod(env.admin, NS, 'stored', 'node-d');
    const outside = path.join(env.tmpDir, 'outside'); // beside the storage root, not in it
    await fs.mkdir(outside);
    await fs.writeFile(path.join(outside, 'precious'), 'keep me');
    const cases = [
      { name: 'del-1', retain: false, dir: path.join(env.storageRoot, NS, 'del-1-x') },
      { name: 'del-2', retain: true, dir: path.join(env.storageRoot, NS, 'del-2-x') },
      { name: 'del-3', retain: false, dir: outside },
    ];
    for (const c of cases) {
      await fs.mkdir(c.dir, { recursive: true });
      await fs.writeFile(path.join(c.dir, 'pages-1.img'), 'x');
      await createCheckpoint(env.admin, NS, c.name, { podName: 'stored', retainImages: c.retain });
      const ck = await waitFor('Dispatched', async () => {
        const x = await getCheckpoint(env.admin, NS, c.name);
        return x.status?.phase === 'Dispatched' && x;
      });
      await agentSucceed(env.agent, await agentClaim(env.agent, ck, 'node-d'), pathToFileURL(c.dir).href);
      await env.admin.delete(crPath('checkpoints', NS, c.name));
    }
    for (const c of cases) {
      await waitFor(`${c.name} gone`, async () => {
        try {
          await getCheckpoint(env.admin, NS, c.name);
          return false;
        } catch {
          return true;
        }
      });
    }
    await expect(fs.stat(cases[0].dir)).rejects.toThrow(/ENOENT/);
    expect(await fs.readFile(path.join(cases[1].dir, 'pages-1.img'), 'utf8')).toBe('x');
    expect(await fs.readFile(path.join(outside, 'precious'), 'utf8')).toBe('keep me');
    expect(await eventsWhenRecorded(env.admin, NS, 'del-1', 'ImagesDeleted')).toHaveLength(1);
    const refused = await eventsFor(env.admin, NS, 'del-3', 'ImagesNotDeleted');
    expect(refused).toHaveLength(1);
    expect(refused[0].message).toMatch(/is outside/);
    const metrics = await op.metrics.registry.metrics();
    expect(metrics).toMatch(/cryopod_checkpoints_total\{result="succeeded"\} 3/);
    expect(metrics).toMatch(/cryopod_images_deleted_total 1/);
    await op.stop();
  });
});
