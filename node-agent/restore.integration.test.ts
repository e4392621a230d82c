/**
 * The agent's restore path against a real kube-apiserver + etcd (testenv), the agent held to the chart's
 * RBAC, real processes and the real native core:
 *
 *   1. a real counter process (testdata/counter.c) in a cgroup named like a pod's container is checkpointed
 *      by the agent (leaveRunning: false, a migration: the dump kills it); the restore pod is made from the
 *      saved pod.json with the operator's own buildRestorePod; a real cryopod-stub (detached, no fd 3: it
 *      waits) runs in a cgroup named like the restore pod's container; the Restore is dispatched before the
 *      stub exists, so the agent claims it and waits. It ends Succeeded; the stub's PID now runs the counter
 *      binary, untraced, still in its container's cgroup, its counter going on from the checkpointed value
 *      with its memory intact; an Event and metrics;
 *   2. a tampered image (one byte of pages-1.img flipped) ends Failed/ImageCorrupt, naming the file: the
 *      native fill finds it while writing the stopped stub (the one restore path, checkpoint/), and the
 *      stub is killed before the saved task runs one instruction: the counter never counts again;
 *   3. a restore pod whose stub never starts ends Failed/Timeout after the Restore's timeout, with the reason.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { Checkpoint, Restore } from '../crds/types';
import { STUB_PATH } from '../checkpoint';
import { holdsFor, waitFor } from '../testenv/wait';
import type { Agent } from './agent';
import { readStatus, tracedThreads } from './procfs';
import { createRestorePod } from './test/restore-pod-fixture';
import { startInProcessAgent } from './test/test-agent';
import type { InProcessAgent } from './test/test-agent';
import { buildCounter, FakeContainer, startFakeContainer, startStubContainer, StubContainer, TestProgram, withDescendants } from './test/test-cgroup-pod';
import {
  TestCluster,
  createDispatchedCheckpoint,
  createNamespace,
  createPod,
  createRestore,
  dispatchRestore,
  eventsWhenRecorded,
  getRestore,
  setContainerRunning,
  startTestCluster,
  waitForPhase,
  waitForRestorePhase,
} from './test/test-cluster';

jest.setTimeout(180000);

const NODE = 'node-r';
const ns = 'team-r';

function httpGet(port: number, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

let cluster: TestCluster;
let running: InProcessAgent;
let agent: Agent;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  await createNamespace(cluster.admin, ns);
  running = await startInProcessAgent(cluster, NODE, 'agent-restore');
  agent = running.agent;
}, 600000);

afterAll(async () => {
  await running?.stop();
  for (const c of cleanups.reverse()) await c();
  await cluster?.stop();
});

function gone(pid: number): boolean {
  const st = readStatus(pid);
  return !st || st.state === 'Z';
}

/** A counter "container", checkpointed by the agent with leaveRunning: false (the dump kills it). */
async function checkpointCounter(kind: 'v1' | 'v2', podName: string, name: string, program: TestProgram = 'counter'): Promise<{ ctr: FakeContainer; cp: Checkpoint; lastCounter: number }> {
  const pod = await createPod(cluster.admin, ns, podName, NODE);
  const uid = pod.metadata?.uid as string;
  const ctr = await startFakeContainer(kind, uid, program);
  cleanups.push(() => ctr.destroy());
  await setContainerRunning(cluster.admin, pod, ctr.containerID);
  await waitFor('the counter to count', () => ctr.state().counter >= 5, 5000);
  await createDispatchedCheckpoint(cluster.admin, ns, name, podName, NODE, uid, { leaveRunning: false });
  const cp = await waitForPhase(cluster.admin, ns, name, ['Succeeded', 'Failed']);
  expect({ phase: cp.status?.phase, message: cp.status?.conditions?.find((c) => c.type === 'Ready')?.message }).toMatchObject({ phase: 'Succeeded' });
  // The original is gone (the migration dump killed it; the test makes sure it is dead either way).
  const died = await waitFor('the original to die', () => gone(ctr.pid), 2000).then(() => true, () => false);
  if (!died) process.kill(ctr.pid, 'SIGKILL');
  // Nothing counts any more: it wrote every 20 ms, so 200 ms is ten ticks of a counter that is gone.
  const lastCounter = ctr.state().counter;
  await holdsFor('the last counter', () => ctr.state().counter === lastCounter, 200);
  return { ctr, cp, lastCounter };
}

function makeRestorePod(cp: Checkpoint, r: Restore, podName: string) {
  return createRestorePod(cluster.admin, cp, r, ns, NODE, podName);
}

async function startStub(kind: 'v1' | 'v2', podUid: string, opts: { pidNamespace?: boolean } = {}): Promise<StubContainer> {
  const stub = await startStubContainer(kind, podUid, STUB_PATH, opts);
  cleanups.push(() => stub.destroy());
  return stub;
}

test.each(['v1', 'v2'] as const)('restores a checkpointed process into a waiting stub (cgroup %s): Succeeded, the stub is the counter, going on', async (kind) => {
  const { cp, lastCounter, ctr } = await checkpointCounter(kind, `web-${kind}`, `ckpt-${kind}`);
  expect(lastCounter).toBeGreaterThan(0);

  const rName = `restore-${kind}`;
  const podName = `web-${kind}-restored`;
  const r = await createRestore(cluster.admin, ns, rName, cp.metadata.name as string);
  const rpod = await makeRestorePod(cp, r, podName);
  await dispatchRestore(cluster.admin, r, podName, NODE);

  // Claimed, and waiting: the pod's container has not started its stub yet.
  await waitFor('the restore to be claimed', async () => (await getRestore(cluster.admin, ns, rName)).status?.phase === 'Running', 10000);
  // And it waits: the agent looks at the restore pod every 250 ms, so 1 s is four looks at stubs not started.
  await holdsFor('the restore to wait', async () => (await getRestore(cluster.admin, ns, rName)).status?.phase === 'Running', 1000, 100);
  const waiting = await getRestore(cluster.admin, ns, rName);
  expect({ phase: waiting.status?.phase, claimedBy: waiting.status?.claimedBy }).toEqual({ phase: 'Running', claimedBy: agent.identity.id });

  // The "runtime" starts the container: the stub in the restore pod's container cgroup; kubelet reports it.
  const stub = await startStub(kind, rpod.metadata?.uid as string);
  await setContainerRunning(cluster.admin, rpod, stub.containerID, 'cryopod-test/counter:1');

  const done = await waitForRestorePhase(cluster.admin, ns, rName, ['Succeeded', 'Failed']);
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: done.status?.phase, reason: ready?.reason, status: ready?.status, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({
    phase: 'Succeeded',
    reason: 'Succeeded',
    status: 'True',
    failure: undefined,
  });
  expect(done.status?.claimedBy).toBe(agent.identity.id);
  expect(done.status?.podName).toBe(podName);
  expect(done.status?.nodeName).toBe(NODE);
  expect(done.status?.durations?.downloadSeconds).toBe(0);
  expect(done.status?.durations?.restoreSeconds).toBeGreaterThan(0);
  expect(ready?.message).toContain(`app (pid ${stub.pid})`);

  // The stub's process is now the counter program, untraced, still in its container's cgroup, alone.
  expect(fs.readlinkSync(`/proc/${stub.pid}/exe`)).toBe(fs.realpathSync(buildCounter()));
  expect(tracedThreads(stub.pid)).toEqual([]);
  expect(fs.readFileSync(`/proc/${stub.pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
  expect(fs.readFileSync(path.join(stub.dir, 'cgroup.procs'), 'utf8').trim()).toBe(String(stub.pid));
  // Its counter goes on from the checkpointed value (not from 0), and its 4 MiB pattern is intact.
  const first = await waitFor('the counter to move on', () => (ctr.state().counter !== lastCounter ? ctr.state() : undefined), 4000);
  expect(first.counter).toBeGreaterThan(lastCounter);
  expect(first.counter).toBeLessThan(lastCounter + 100); // about 50 ticks a second since the restore
  expect(first.ok).toBe(true);
  const later = await waitFor('the counter to go on', () => (ctr.state().counter > first.counter ? ctr.state() : undefined), 5000);
  expect(later.counter).toBeGreaterThan(first.counter);
  expect(later.ok).toBe(true);

  // Event and metrics.
  const events = await eventsWhenRecorded(cluster.admin, ns, rName);
  expect(events.map((e) => [e.reason, e.type])).toEqual([['Succeeded', 'Normal']]);
  const metrics = await httpGet(agent.port as number, '/metrics');
  expect(metrics).toMatch(/^cryopod_restores_total\{result="succeeded",node="node-r"\} [1-9]/m);
  expect(metrics).toMatch(/^cryopod_restore_seconds_count\{node="node-r"\} [1-9]/m);
});

/** IDs of a process in every PID namespace it is visible in, ours first. */
function nsPids(pid: number): number[] {
  return (/^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
}

test('a container of two processes in its own PID namespace comes back into the stub\'s, as PIDs 1 and 2 there, the pipe between them working', async () => {
  const { cp, lastCounter, ctr } = await checkpointCounter('v2', 'family', 'ckpt-family', 'counter-family');
  expect(ctr.state().ids).toEqual([1, 2]);
  const r = await createRestore(cluster.admin, ns, 'restore-family', cp.metadata.name as string);
  const rpod = await makeRestorePod(cp, r, 'family-restored');
  await dispatchRestore(cluster.admin, r, 'family-restored', NODE);
  const stub = await startStub('v2', rpod.metadata?.uid as string, { pidNamespace: true });
  expect(nsPids(stub.pid)).toEqual([stub.pid, 1]);
  await setContainerRunning(cluster.admin, rpod, stub.containerID, 'cryopod-test/counter:1');

  const done = await waitForRestorePhase(cluster.admin, ns, 'restore-family', ['Succeeded', 'Failed']);
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: done.status?.phase, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({ phase: 'Succeeded', failure: undefined });
  // The stub became the init, its child is the worker at PID 2 of the stub's namespace, both in the
  // restore pod's container cgroup, untraced.
  const family = withDescendants(stub.pid);
  expect(family.length).toBe(2);
  expect(family.map((p) => nsPids(p)[1])).toEqual([1, 2]);
  expect(family.map((p) => fs.readlinkSync(`/proc/${p}/ns/pid`))).toEqual([fs.readlinkSync(`/proc/${stub.pid}/ns/pid`), fs.readlinkSync(`/proc/${stub.pid}/ns/pid`)]);
  expect(fs.readFileSync(path.join(stub.dir, 'cgroup.procs'), 'utf8').trim().split('\n').map(Number).sort()).toEqual([...family].sort());
  for (const p of family) expect(tracedThreads(p)).toEqual([]);
  // The worker's counter arrives through the pipe again, from where it was; the init sees IDs 1 and 2.
  const now = await waitFor('the counter to move on', () => (ctr.state().counter !== lastCounter ? ctr.state() : undefined), 4000);
  expect(now.counter).toBeGreaterThan(lastCounter);
  expect(now.counter).toBeLessThan(lastCounter + 100);
  expect(now).toMatchObject({ ok: true, ids: [1, 2] });
});

test('a tampered image ends Failed/ImageCorrupt, and the stub is killed before the saved task runs', async () => {
  const { cp, ctr, lastCounter } = await checkpointCounter('v1', 'db', 'ckpt-db');
  const dir = new URL(cp.status?.imageLocation as string).pathname;
  const pages = path.join(dir, 'app', 'pages-1.img');
  const fd = fs.openSync(pages, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, 4096 + 17);
  b[0] ^= 0xff;
  fs.writeSync(fd, b, 0, 1, 4096 + 17);
  fs.closeSync(fd);

  const r = await createRestore(cluster.admin, ns, 'restore-db', 'ckpt-db');
  const rpod = await makeRestorePod(cp, r, 'db-restored');
  const stub = await startStub('v1', rpod.metadata?.uid as string);
  await setContainerRunning(cluster.admin, rpod, stub.containerID);
  await dispatchRestore(cluster.admin, r, 'db-restored', NODE);

  const done = await waitForRestorePhase(cluster.admin, ns, 'restore-db', ['Succeeded', 'Failed']);
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: done.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'ImageCorrupt' });
  expect(ready?.message).toMatch(/pages-1\.img/);
  expect(ready?.message).toMatch(/ECHECKSUM|sha256|blake3/);
  expect(ready?.message).toMatch(/the saved task never ran/);
  // Found while filling: the half-built stub is killed (init reaps it), its container holds nothing.
  const procs = path.join(stub.dir, 'cgroup.procs');
  await waitFor('the stub\'s cgroup to empty', () => fs.readFileSync(procs, 'utf8').trim() === '', 5000).catch(() => undefined);
  expect(fs.readFileSync(procs, 'utf8').trim()).toBe('');
  expect(readStatus(stub.pid)?.state ?? 'gone').toMatch(/^(gone|Z)$/);
  // It never ran the saved task: the counter (which writes its state as it counts) did not move.
  expect(ctr.state().counter).toBe(lastCounter);
  const events = await eventsWhenRecorded(cluster.admin, ns, 'restore-db');
  expect(events.map((e) => [e.reason, e.type])).toEqual([['ImageCorrupt', 'Warning']]);
  expect(await httpGet(agent.port as number, '/metrics')).toMatch(/^cryopod_restores_total\{result="failed",node="node-r"\} [1-9]/m);
});

test('a restore pod whose stub never starts ends Failed/Timeout with the reason', async () => {
  const { cp } = await checkpointCounter('v1', 'cache', 'ckpt-cache');
  const r = await createRestore(cluster.admin, ns, 'restore-cache', 'ckpt-cache', 6);
  await makeRestorePod(cp, r, 'cache-restored');
  await dispatchRestore(cluster.admin, r, 'cache-restored', NODE);
  const done = await waitForRestorePhase(cluster.admin, ns, 'restore-cache', ['Succeeded', 'Failed'], 30000);
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: done.status?.phase, reason: ready?.reason, claimedBy: done.status?.claimedBy }).toEqual({ phase: 'Failed', reason: 'Timeout', claimedBy: agent.identity.id });
  expect(ready?.message).toMatch(/container app has no containerID yet/);
});
