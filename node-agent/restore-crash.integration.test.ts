/**
 * The agent SIGKILLed in the middle of a restore, against a real kube-apiserver + etcd (testenv), real
 * processes and the real native core, then started again (a new instance, same node and pod name):
 *
 *   killed at            the stub then                       the restarted agent
 *   morph (images read,  untouched: waiting, untraced        claims it again and restores it: Succeeded
 *   no stub touched)
 *   seize, memory,       killed with its restorer            Failed/AgentRestarted, naming what is left
 *   release (native)     (PTRACE_O_EXITKILL): gone
 *   restored (let go,    the restored counter, running        Failed/AgentRestarted (the result was not
 *   status not written)                                      written; the process runs on untouched)
 *
 * In every case the Restore ends within 5 s of the restart, no stub is left half-morphed, and nothing in
 * the restore pod's container is stopped or traced.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Checkpoint } from '../crds/types';
import { waitFor } from '../testenv/wait';
import { readStatus, tracedThreads } from './procfs';
import { buildAgent, exited, phaseHook, startAgentChild } from './test/agent-child';
import { createRestorePod } from './test/restore-pod-fixture';
import { buildCounter, FakeContainer, startFakeContainer, startStubContainer, StubContainer } from './test/test-cgroup-pod';
import {
  TestCluster,
  createDispatchedCheckpoint,
  createNamespace,
  createPod,
  createRestore,
  dispatchRestore,
  getRestore,
  setContainerRunning,
  startTestCluster,
  waitForPhase,
  waitForRestorePhase,
} from './test/test-cluster';
import { STUB_PATH } from '../checkpoint';

jest.setTimeout(240000);

const NODE = 'node-k';
const ns = 'team-k';

let cluster: TestCluster;
let tmp: string;
let cp: Checkpoint;
let ctr: FakeContainer;
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

function agent(restoreHooks: { phaseFd?: number } = {}): ChildProcess {
  const child = startAgentChild({
    kubeconfig: cluster.agentKubeconfig,
    node: NODE,
    storageRoot: path.join(tmp, 'images'),
    stateDir: path.join(tmp, 'state'),
    logFile: path.join(tmp, 'agent.log'),
    restoreHooks,
  });
  children.push(child);
  return child;
}

async function stopAgent(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await exited(child);
}

function gone(pid: number): boolean {
  const st = readStatus(pid);
  return !st || st.state === 'Z';
}

beforeAll(async () => {
  expect(buildAgent()).toBe(true);
  cluster = await startTestCluster();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-restore-crash-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  await createNamespace(cluster.admin, ns);
  // One migration checkpoint of a counter (the dump kills it); every test restores it again.
  const pod = await createPod(cluster.admin, ns, 'web', NODE);
  ctr = await startFakeContainer('v2', pod.metadata?.uid as string);
  cleanups.push(() => ctr.destroy());
  await setContainerRunning(cluster.admin, pod, ctr.containerID);
  await waitFor('the counter to count', () => ctr.state().counter >= 5, 5000);
  const dumping = agent();
  await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-web', 'web', NODE, pod.metadata?.uid as string, { leaveRunning: false });
  cp = await waitForPhase(cluster.admin, ns, 'ckpt-web', ['Succeeded', 'Failed']);
  expect(cp.status?.phase).toBe('Succeeded');
  await stopAgent(dumping);
  if (!(await waitFor('the original to die', () => gone(ctr.pid), 2000).then(() => true, () => false))) process.kill(ctr.pid, 'SIGKILL');
}, 600000);

afterAll(async () => {
  for (const c of children) await stopAgent(c);
  for (const c of cleanups.reverse()) await c();
  await cluster?.stop();
});

/** Every process in the container's cgroup: neither stopped nor traced. */
function expectNoneStoppedOrTraced(stub: StubContainer): number[] {
  const pids = fs.readFileSync(path.join(stub.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const p of pids) {
    expect({ pid: p, traced: tracedThreads(p) }).toEqual({ pid: p, traced: [] });
    expect({ pid: p, state: readStatus(p)?.state }).not.toEqual({ pid: p, state: expect.stringMatching(/^[Tt]$/) });
  }
  return pids;
}

const cases: Array<{ phase: string; expect: 'retried' | 'stub killed' | 'restored' }> = [
  { phase: 'morph', expect: 'retried' },
  { phase: 'seize', expect: 'stub killed' },
  { phase: 'memory', expect: 'stub killed' },
  { phase: 'release', expect: 'stub killed' },
  { phase: 'restored', expect: 'restored' },
];

test.each(cases)('killed at $phase: $expect, the Restore ends within 5 s of the restart', async ({ phase, expect: outcome }) => {
  const rName = `restore-at-${phase}`;
  const podName = `web-at-${phase}`;
  const first = agent({ phaseFd: 3 });
  const seen: string[] = [];
  const hook = phaseHook(first, (name) => {
    seen.push(name);
    if (name === phase) first.kill('SIGKILL');
    else hook.step();
  });
  const r = await createRestore(cluster.admin, ns, rName, cp.metadata.name as string);
  const rpod = await createRestorePod(cluster.admin, cp, r, ns, NODE, podName);
  const stub = await startStubContainer('v2', rpod.metadata?.uid as string, STUB_PATH);
  cleanups.push(() => stub.destroy());
  await setContainerRunning(cluster.admin, rpod, stub.containerID, 'cryopod-test/counter:1');
  await dispatchRestore(cluster.admin, r, podName, NODE);
  await waitFor(`the agent to die at ${phase}`, () => first.signalCode === 'SIGKILL', 60000);
  expect(seen[seen.length - 1]).toBe(phase);
  const claimed = await getRestore(cluster.admin, ns, rName);
  expect(claimed.status?.phase).toBe('Running');

  // What the dead agent left: a waiting stub, no stub at all, or the restored counter.
  if (outcome === 'stub killed') await waitFor('the half-built stub to die with its restorer', () => gone(stub.pid), 5000);
  if (outcome === 'retried') expect(fs.realpathSync(`/proc/${stub.pid}/exe`)).toBe(fs.realpathSync(STUB_PATH));
  if (outcome === 'restored') expect(fs.readlinkSync(`/proc/${stub.pid}/exe`)).toBe(fs.realpathSync(buildCounter()));
  expectNoneStoppedOrTraced(stub);

  const restarted = Date.now();
  const second = agent();
  const done = await waitForRestorePhase(cluster.admin, ns, rName, ['Succeeded', 'Failed'], 30000);
  const endedMs = Date.now() - restarted;
  const ready = done.status?.conditions?.find((c) => c.type === 'Ready');
  process.stdout.write(`agent killed at restore phase ${phase}: ${done.status?.phase}/${ready?.reason} ${endedMs} ms after the restart: ${ready?.message}\n`);
  expect(endedMs).toBeLessThan(5000);
  if (outcome === 'retried') {
    expect({ phase: done.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Succeeded', reason: 'Succeeded' });
    expect(done.status?.claimedBy).not.toBe(claimed.status?.claimedBy);
    expect(fs.readFileSync(path.join(tmp, 'agent.log'), 'utf8')).toMatch(new RegExp(`restore ${ns}/${rName}: recovered work of .*: no stub was touched .*; retrying`));
  } else {
    expect({ phase: done.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'AgentRestarted' });
    expect(ready?.message).toMatch(/had begun on its stubs \(container app.+\); it was not retried/);
  }
  if (outcome === 'stub killed') {
    expect(fs.readFileSync(path.join(stub.dir, 'cgroup.procs'), 'utf8').trim()).toBe('');
  } else {
    // The stub's PID runs the counter, untraced, not stopped, alone in its container, counting on.
    expect(fs.readlinkSync(`/proc/${stub.pid}/exe`)).toBe(fs.realpathSync(buildCounter()));
    expect(expectNoneStoppedOrTraced(stub)).toEqual([stub.pid]);
    const a = ctr.state().counter;
    const b = await waitFor('the restored counter to count', () => (ctr.state().counter > a ? ctr.state() : undefined), 5000);
    expect(b.ok).toBe(true);
    process.kill(stub.pid, 'SIGKILL');
    await waitFor('the restored counter to die', () => gone(stub.pid), 5000);
  }
  await stopAgent(second);
});
