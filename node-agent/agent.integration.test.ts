/**
 * The node agent against a real kube-apiserver + etcd (testenv), with the agent's ServiceAccount identity
 * held to its RBAC rules, and real processes in cgroups named like a pod's (test/test-cgroup-pod.ts):
 *
 *   - a dispatched Checkpoint ends Succeeded with images on disk; the process still runs, thawed and
 *     untraced; status has the per-phase durations; an Event was recorded (cgroup v1 freezer and v2);
 *   - a missing pod ends Failed/PodNotFound with an Event;
 *   - an agent SIGKILLed while it holds the pod frozen, then restarted: the work ends Failed/AgentRestarted,
 *     the process runs, thawed and untraced, no partial images remain, and the work was not done twice;
 *   - an agent SIGKILLed (with the dump's guard: a container killed whole) while the process is infected
 *     by the parasite mid-dump: the process waits parked (alive, untraced); the restarted agent's journal
 *     puts it back (no parasite mapping, running) within 5 s, and the work ends Failed/AgentRestarted;
 *   - the API server restarted while the agent dumps (down from the infection until the images are on
 *     disk): the Checkpoint still ends with a result (Succeeded, or Failed with a reason), nothing frozen;
 *   - the storage root full while the agent dumps (a 1 MiB tmpfs): Failed/DumpFailed naming ENOSPC, no
 *     image left, the process running, thawed, untraced, without the parasite.
 */
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Agent } from './agent';
import type { TestHooks as DumperHooks } from './dumper';
import { freezerState } from './freezer';
import { tracedThreads } from './procfs';
import { buildAgent, exited, phaseHook, startAgentChild as startChild } from './test/agent-child';
import { FakeContainer, startFakeContainer, TestProgram, withDescendants } from './test/test-cgroup-pod';
import {
  TestCluster,
  createDispatchedCheckpoint,
  createNamespace,
  createPod,
  eventsWhenRecorded,
  getCheckpoint,
  setContainerRunning,
  startTestCluster,
  waitForPhase,
} from './test/test-cluster';
import { NODE_LABEL } from '../kube';
import { apiRequest, waitFor } from '../testenv';

jest.setTimeout(180000);

const ROOT = path.join(__dirname, '..');

function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** The process runs (its counter moves), its memory is intact, its cgroup is thawed and nothing traces it. */
async function expectRunningThawedUntraced(ctr: FakeContainer): Promise<void> {
  expect(freezerState(ctr.freezer)).toBe('thawed');
  expect(freezerState(ctr.podFreezer)).toBe('thawed');
  if (ctr.freezer.kind === 'v1') expect(fs.readFileSync(path.join(ctr.freezer.path, 'freezer.state'), 'utf8').trim()).toBe('THAWED');
  else expect(fs.readFileSync(path.join(ctr.freezer.path, 'cgroup.events'), 'utf8')).toMatch(/^frozen 0$/m);
  expect(tracedThreads(ctr.pid)).toEqual([]);
  expect(fs.readFileSync(`/proc/${ctr.pid}/status`, 'utf8')).toMatch(/^TracerPid:\s+0$/m);
  const a = ctr.state();
  const b = await waitFor('the counter to move', () => (ctr.state().counter > a.counter ? ctr.state() : undefined), 5000);
  expect(b.counter).toBeGreaterThan(a.counter);
  expect(b.ok).toBe(true);
}

let cluster: TestCluster;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  cluster = await startTestCluster();
}, 600000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await cluster?.stop();
});

describe('an agent running in-process', () => {
  const NODE = 'node-a';
  let agent: Agent;
  let storageRoot: string;
  const ns = 'team-a';

  beforeAll(async () => {
    storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-images-'));
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-state-'));
    cleanups.push(() => fs.rmSync(storageRoot, { recursive: true, force: true }), () => fs.rmSync(stateDir, { recursive: true, force: true }));
    await createNamespace(cluster.admin, ns);
    agent = new Agent(
      { nodeName: NODE, podName: 'agent-in-process', storageRoot, stateDir, port: 0, bind: '127.0.0.1', kubeconfig: cluster.agentKubeconfig, freezeMode: 'native', concurrency: 1 },
      { log: () => undefined },
    );
    await agent.start();
    await waitFor('the agent to list its work', () => agent.ready(), 10000);
  });

  afterAll(async () => {
    await agent?.stop();
  });

  test('is held to its RBAC rules (the chart\'s, rendered by helm): it cannot create pods or read secrets', async () => {
    expect(cluster.rbacSource).toBe(fs.existsSync(path.join(ROOT, 'helm', 'cryopod', 'Chart.yaml')) ? 'helm' : 'test');
    const pods = await apiRequest(cluster.agentKubeconfig, 'POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } });
    expect(pods.status).toBe(403);
    expect((await apiRequest(cluster.agentKubeconfig, 'GET', `/api/v1/namespaces/${ns}/secrets`)).status).toBe(403);
    expect((await apiRequest(cluster.agentKubeconfig, 'GET', `/api/v1/namespaces/${ns}/pods`)).status).toBe(200);
  });

  test('/healthz is ready after the first list', async () => {
    expect(agent.ready()).toBe(true);
    expect((await httpGet(agent.port as number, '/healthz')).status).toBe(200);
  });

  test.each(['v1', 'v2'] as const)('checkpoints a pod whose process is in a cgroup %s: Succeeded, images on disk, process running', async (kind) => {
    const podName = `web-${kind}`;
    const pod = await createPod(cluster.admin, ns, podName, NODE);
    const uid = pod.metadata?.uid as string;
    const ctr = await startFakeContainer(kind, uid);
    cleanups.push(() => ctr.destroy());
    await setContainerRunning(cluster.admin, pod, ctr.containerID);
    const before = ctr.state().counter;

    const name = `ckpt-${kind}`;
    await createDispatchedCheckpoint(cluster.admin, ns, name, podName, NODE, uid);
    const cp = await waitForPhase(cluster.admin, ns, name, ['Succeeded', 'Failed']);

    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    // (the message is in the comparison so that a failure shows why)
    expect({ phase: cp.status?.phase, reason: ready?.reason, status: ready?.status, failure: ready?.status === 'True' ? undefined : ready?.message }).toEqual({
      phase: 'Succeeded',
      reason: 'Succeeded',
      status: 'True',
      failure: undefined,
    });
    expect(cp.status?.claimedBy).toBe(agent.identity.id);
    expect(cp.status?.startedAt).toBeDefined();
    expect(cp.status?.finishedAt).toBeDefined();
    // The per-phase durations.
    const d = cp.status?.durations ?? {};
    expect(d.freezeSeconds).toBeGreaterThan(0);
    expect(cp.status?.freezeDuration).toMatch(/^\d+(\.\d+)?(us|ms|s)$/);
    expect(d.dumpSeconds).toBeGreaterThan(0);
    expect(d.dumpSeconds).toBeGreaterThanOrEqual(d.freezeSeconds as number);
    expect(d.uploadSeconds).toBe(0);
    // Per-container results.
    expect(cp.status?.containers).toHaveLength(1);
    const c = cp.status!.containers![0];
    expect({ name: c.name, containerID: c.containerID, pids: c.pids }).toEqual({ name: 'app', containerID: ctr.containerID, pids: [ctr.pid] });
    expect(c.pages).toBeGreaterThanOrEqual(1024); // the 4 MiB pattern, at least
    expect(c.bytes).toBeGreaterThanOrEqual(c.pages * 4096);
    // Images on disk where imageLocation says, inside the storage root.
    const dir = new URL(cp.status!.imageLocation as string).pathname;
    expect(dir).toBe(path.join(fs.realpathSync(storageRoot), ns, `${name}-${cp.metadata.uid}`));
    expect(fs.statSync(path.join(dir, 'app', 'pages-1.img')).size).toBe(c.pages * 4096);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'app', 'cryopod-manifest.json'), 'utf8'));
    expect(manifest).toBeTruthy();
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'pod.json'), 'utf8'));
    expect(saved.metadata.uid).toBe(uid);
    expect(saved.spec.containers[0].name).toBe('app');
    expect(saved.metadata.managedFields).toBeUndefined();
    const sum = (p: string): number => fs.readdirSync(p, { withFileTypes: true }).reduce((n, e) => n + (e.isDirectory() ? sum(path.join(p, e.name)) : fs.statSync(path.join(p, e.name)).size), 0);
    expect(cp.status?.imageSizeBytes).toBe(sum(dir));
    // The process still runs, was not left frozen or traced.
    expect(ctr.state().counter).toBeGreaterThan(before);
    await expectRunningThawedUntraced(ctr);
    // An Event with the same reason.
    const events = await eventsWhenRecorded(cluster.admin, ns, name);
    expect(events.map((e) => [e.reason, e.type])).toEqual([['Succeeded', 'Normal']]);
    // Metrics.
    const metrics = (await httpGet(agent.port as number, '/metrics')).body;
    expect(metrics).toMatch(/^cryopod_checkpoints_total\{result="succeeded",node="node-a"\} [1-9]/m);
    expect(metrics).toMatch(/^cryopod_freeze_seconds_count\{node="node-a"\} [1-9]/m);
    expect(metrics).toMatch(/^cryopod_checkpoint_bytes_total\{node="node-a"\} [1-9]/m);
  });

  test('a missing pod ends Failed/PodNotFound with an Event, and no images', async () => {
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-nopod', 'no-such-pod', NODE);
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-nopod', ['Succeeded', 'Failed']);
    expect(cp.status?.phase).toBe('Failed');
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready).toMatchObject({ status: 'False', reason: 'PodNotFound' });
    expect(ready?.message).toMatch(/no-such-pod/);
    expect(cp.status?.imageLocation).toBeUndefined();
    expect(fs.existsSync(path.join(storageRoot, ns, `ckpt-nopod-${cp.metadata.uid}`))).toBe(false);
    const events = await eventsWhenRecorded(cluster.admin, ns, 'ckpt-nopod');
    expect(events.map((e) => [e.reason, e.type])).toEqual([['PodNotFound', 'Warning']]);
  });

  test('work labelled for another node is left alone', async () => {
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-other-node', 'no-such-pod', 'node-z');
    // How long to watch: until the agent has finished work created after it. Its watch delivers in
    // resourceVersion order and its queue (concurrency 1) runs keys in that order, so had the other node's
    // checkpoint reached it, it would have been claimed before this one was failed.
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-after-other-node', 'no-such-pod', NODE);
    expect((await waitForPhase(cluster.admin, ns, 'ckpt-after-other-node', ['Failed'])).status?.phase).toBe('Failed');
    const cp = await getCheckpoint(cluster.admin, ns, 'ckpt-other-node');
    expect(cp.status?.phase).toBe('Dispatched');
    expect(cp.status?.claimedBy).toBeUndefined();
  });

  test('work claimed by a foreign agent (Running, claimedBy another node\'s agent) is left alone', async () => {
    // Made Running with the foreign claim directly: never Dispatched, so this agent never had it to claim.
    const base = `/apis/cryopod.io/v1alpha1/namespaces/${ns}/checkpoints`;
    const foreign = 'node-z/cryopod-agent-x/boot-1';
    const created = await apiRequest(cluster.admin, 'POST', base, { apiVersion: 'cryopod.io/v1alpha1', kind: 'Checkpoint', metadata: { name: 'ckpt-foreign-claim', namespace: ns, labels: { [NODE_LABEL]: NODE } }, spec: { podName: 'no-such-pod' } });
    expect(created.status).toBe(201);
    const now = new Date().toISOString();
    const claimed = { ...(created.body as object), status: { phase: 'Running', nodeName: NODE, claimedBy: foreign, dispatchedAt: now, startedAt: now } };
    expect((await apiRequest(cluster.admin, 'PUT', `${base}/ckpt-foreign-claim/status`, claimed)).status).toBe(200);
    // Watched for as long as the agent takes to finish work created after it (same ordering as above).
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-after-foreign-claim', 'no-such-pod', NODE);
    expect((await waitForPhase(cluster.admin, ns, 'ckpt-after-foreign-claim', ['Failed'])).status?.phase).toBe('Failed');
    const cp = await getCheckpoint(cluster.admin, ns, 'ckpt-foreign-claim');
    expect({ phase: cp.status?.phase, claimedBy: cp.status?.claimedBy }).toEqual({ phase: 'Running', claimedBy: foreign });
  });

  test('a Checkpoint labelled for this node of a pod that runs on another node: refused, Failed/PodNotScheduled naming both nodes', async () => {
    await createPod(cluster.admin, ns, 'web-elsewhere', 'node-z');
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-pod-elsewhere', 'web-elsewhere', NODE);
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-pod-elsewhere', ['Failed', 'Succeeded']);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason, message: ready?.message }).toEqual({
      phase: 'Failed', reason: 'PodNotScheduled', message: `pod ${ns}/web-elsewhere runs on node node-z, not ${NODE}`,
    });
    expect(cp.status?.containers ?? []).toEqual([]);
  });
});

describe('an agent killed while it holds the pod frozen, then restarted', () => {
  const NODE = 'node-b';
  const ns = 'team-b';
  const children: ChildProcess[] = [];

  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  });

  function startAgentChild(storageRoot: string, stateDir: string, dumperHooks: DumperHooks, logFile: string, node = NODE): ChildProcess {
    const child = startChild({ kubeconfig: cluster.agentKubeconfig, node, storageRoot, stateDir, logFile, dumperHooks });
    children.push(child);
    return child;
  }

  test('the work ends Failed/AgentRestarted; the process runs thawed and untraced; it is not done twice', async () => {
    // The agent runs as a child: build it.
    expect(buildAgent()).toBe(true);

    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cryopod-restart-'));
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const storageRoot = path.join(tmp, 'images');
    const stateDir = path.join(tmp, 'state');
    const marker = path.join(tmp, 'frozen');
    const log = path.join(tmp, 'agent.log');

    await createNamespace(cluster.admin, ns);
    const pod = await createPod(cluster.admin, ns, 'db', NODE);
    const uid = pod.metadata?.uid as string;
    const ctr = await startFakeContainer('v1', uid);
    cleanups.push(() => ctr.destroy());
    await setContainerRunning(cluster.admin, pod, ctr.containerID);
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-db', 'db', NODE, uid);

    // First agent: claims, freezes the pod's container cgroup, and pauses there (the test hook).
    const first = startAgentChild(storageRoot, stateDir, { pauseAfterFreezeFile: marker }, log);
    await waitFor('the first agent to freeze the pod', () => fs.existsSync(marker), 30000);
    const running = await getCheckpoint(cluster.admin, ns, 'ckpt-db');
    expect(running.status?.phase).toBe('Running');
    const firstClaim = running.status?.claimedBy as string;
    expect(firstClaim).toMatch(/^node-b\/cryopod-agent-x7k2p\/[0-9a-f]+$/);
    expect(freezerState(ctr.freezer)).toBe('frozen'); // the dead agent will leave it frozen
    expect(fs.readdirSync(path.join(stateDir, NODE, 'freezes'))).toHaveLength(1);
    fs.mkdirSync(path.join(storageRoot, ns, `ckpt-db-${running.metadata.uid}`, 'app'), { recursive: true }); // a partial image dir
    fs.writeFileSync(path.join(storageRoot, ns, `ckpt-db-${running.metadata.uid}`, 'app', 'pages-1.img'), 'partial');

    first.kill('SIGKILL');
    await new Promise((r) => (first.exitCode !== null || first.signalCode !== null ? r(null) : first.once('exit', r)));
    // Still frozen once its freezer is dead (no time to wait for: nothing else thaws it before the second agent).
    expect(freezerState(ctr.freezer)).toBe('frozen');

    // Second agent, same node and pod name, a new boot: recovers the work.
    const second = startAgentChild(storageRoot, stateDir, {}, log);
    const cp = await waitForPhase(cluster.admin, ns, 'ckpt-db', ['Succeeded', 'Failed'], 60000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'AgentRestarted' });
    expect(ready?.message).toContain(firstClaim);
    expect(cp.status?.claimedBy).toBe(firstClaim); // never claimed (and done) a second time
    expect(cp.status?.imageLocation).toBeUndefined();
    expect(fs.existsSync(path.join(storageRoot, ns, `ckpt-db-${cp.metadata.uid}`))).toBe(false);
    await expectRunningThawedUntraced(ctr);
    expect(fs.readdirSync(path.join(stateDir, NODE, 'freezes'))).toEqual([]);

    // Not done twice: exactly one Event, the failure; and it stays Failed. Watched until the agent has
    // finished a checkpoint created after this result was written: the watch event of its own write came
    // first in the same stream and queue (concurrency 1), so a second run of ckpt-db would be over by then.
    await createDispatchedCheckpoint(cluster.admin, ns, 'ckpt-after-db', 'no-such-pod', NODE);
    expect((await waitForPhase(cluster.admin, ns, 'ckpt-after-db', ['Failed'])).status?.phase).toBe('Failed');
    const events = await eventsWhenRecorded(cluster.admin, ns, 'ckpt-db');
    expect(events.map((e) => [e.reason, e.type])).toEqual([['AgentRestarted', 'Warning']]);
    const later = await getCheckpoint(cluster.admin, ns, 'ckpt-db');
    expect(later.status?.phase).toBe('Failed');
    expect(later.metadata.resourceVersion).toBe(cp.metadata.resourceVersion);

    // Graceful shutdown: SIGTERM, exit 0.
    second.kill('SIGTERM');
    const code = await new Promise((r) => (second.exitCode !== null ? r(second.exitCode) : second.once('exit', (c) => r(c))));
    expect(code).toBe(0);
  });

  /** The dump guards (checkpoint/guard.ts) watching `pid`. */
  function guardsOf(pid: number): number[] {
    return fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((e) => {
      try {
        const argv = fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
        return argv.some((a) => a.endsWith('cryopod-guard')) && argv.includes(String(pid));
      } catch {
        return false;
      }
    });
  }

  /** A pod `name` on `node` whose process runs in a fake container, and a Checkpoint ckpt-<name> dispatched to it. */
  async function podWithDispatchedCheckpoint(node: string, ns: string, name: string, kind: 'v1' | 'v2', program: TestProgram = 'counter') {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `cryopod-${name}-`));
    cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
    await createNamespace(cluster.admin, ns);
    const pod = await createPod(cluster.admin, ns, name, node);
    const uid = pod.metadata?.uid as string;
    const ctr = await startFakeContainer(kind, uid, program);
    cleanups.push(() => ctr.destroy());
    await setContainerRunning(cluster.admin, pod, ctr.containerID);
    await createDispatchedCheckpoint(cluster.admin, ns, `ckpt-${name}`, name, node, uid);
    return { storageRoot: path.join(tmp, 'images'), stateDir: path.join(tmp, 'state'), log: path.join(tmp, 'agent.log'), ctr };
  }

  test('killed with its guard while the parasite is in the process: the journal puts it back within 5 s of the restart', async () => {
    const node = 'node-c';
    const { storageRoot, stateDir, log, ctr } = await podWithDispatchedCheckpoint(node, 'team-c', 'web', 'v2');

    // First agent: held right after the snapshot fork (leaveRunning, the default: the parasite runs in
    // the process, its copy-on-write child holds the pages), then SIGKILLed together with the dump's
    // guard, as when the agent's container dies whole.
    const first = startAgentChild(storageRoot, stateDir, { phaseFd: 3 }, log, node);
    await new Promise<void>((resolve) => {
      const hook = phaseHook(first, (name) => (name === 'snapshot' ? resolve() : hook.step()));
    });
    const guards = guardsOf(ctr.pid);
    expect(guards).toHaveLength(1);
    for (const g of guards) process.kill(g, 'SIGKILL');
    first.kill('SIGKILL');
    await new Promise((r) => (first.exitCode !== null || first.signalCode !== null ? r(null) : first.once('exit', r)));
    // Parked, not killed: alive, untraced once its tracer is gone, the parasite still mapped.
    await waitFor('the dead agent to leave the process untraced', () => tracedThreads(ctr.pid).length === 0, 5000);
    expect(fs.readFileSync(`/proc/${ctr.pid}/maps`, 'utf8')).toContain('cryopod-parasite');
    // Asleep in the park (once let go by the dead tracer it runs the few instructions into its pause()).
    await waitFor('the parked process to sleep', () => /^State:\s+S/m.test(fs.readFileSync(`/proc/${ctr.pid}/status`, 'utf8')), 5000);
    const snapshotChild = () => fs.readFileSync(`/proc/${ctr.pid}/task/${ctr.pid}/children`, 'utf8').trim();
    expect(snapshotChild()).not.toBe(''); // exits on its own (its socket's far end died), left a zombie

    const restarted = Date.now();
    startAgentChild(storageRoot, stateDir, {}, log, node);
    await waitFor(
      'the restarted agent to put the process back',
      () => !fs.readFileSync(`/proc/${ctr.pid}/maps`, 'utf8').includes('cryopod-parasite'),
      5000,
    );
    const putBackMs = Date.now() - restarted;
    expect(putBackMs).toBeLessThan(5000);
    await expectRunningThawedUntraced(ctr);
    expect(snapshotChild()).toBe('');
    expect(fs.readFileSync(log, 'utf8')).toMatch(
      /put back pid \d+ left by an earlier agent's dump: parasite removed true, registers restored true, fds closed \d+, snapshot children reaped 1/,
    );
    const cp = await waitForPhase(cluster.admin, 'team-c', 'ckpt-web', ['Succeeded', 'Failed'], 60000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'AgentRestarted' });
    expect(fs.existsSync(path.join(storageRoot, 'team-c', `ckpt-web-${cp.metadata.uid}`))).toBe(false);
    process.stdout.write(`parked process put back ${putBackMs} ms after the agent restarted\n`);
  });

  test('killed with its guard while a child of the process is infected (a tree dump): the journal puts every process back', async () => {
    const node = 'node-f';
    const { storageRoot, stateDir, log, ctr } = await podWithDispatchedCheckpoint(node, 'team-f', 'fam', 'v2', 'counter-family');
    // Held at the second process's state (the tree's child, infected), then killed with the guard.
    const first = startAgentChild(storageRoot, stateDir, { phaseFd: 3 }, log, node);
    let states = 0;
    await new Promise<void>((resolve) => {
      const hook = phaseHook(first, (name) => (name === 'state' && ++states === 2 ? resolve() : hook.step()));
    });
    const family = withDescendants(ctr.pid);
    expect(family).toHaveLength(2);
    const guards = guardsOf(ctr.pid);
    expect(guards).toHaveLength(1);
    for (const g of guards) process.kill(g, 'SIGKILL');
    first.kill('SIGKILL');
    await exited(first);
    await waitFor('the dead agent to leave the tree untraced', () => family.every((p) => tracedThreads(p).length === 0), 5000);
    const infected = (p: number) => fs.readFileSync(`/proc/${p}/maps`, 'utf8').includes('cryopod-parasite');
    expect(infected(family[1])).toBe(true); // the child waits parked

    const restarted = Date.now();
    startAgentChild(storageRoot, stateDir, {}, log, node);
    await waitFor('the restarted agent to put every process back', () => family.every((p) => !infected(p)), 5000);
    expect(Date.now() - restarted).toBeLessThan(5000);
    await expectRunningThawedUntraced(ctr); // the init's counter moves: it comes from the child, through the pipe
    for (const p of family) expect(tracedThreads(p)).toEqual([]);
    expect(fs.readFileSync(log, 'utf8')).toMatch(new RegExp(`put back pid ${family[1]} left by an earlier agent's dump: parasite removed true, registers restored true`));
    const cp = await waitForPhase(cluster.admin, 'team-f', 'ckpt-fam', ['Succeeded', 'Failed'], 60000);
    expect(cp.status?.conditions?.find((c) => c.type === 'Ready')?.reason).toBe('AgentRestarted');
  });

  test('the API server restarted mid-checkpoint: the Checkpoint still ends with a result, nothing left frozen', async () => {
    const node = 'node-d';
    const { storageRoot, stateDir, log, ctr } = await podWithDispatchedCheckpoint(node, 'team-d', 'api', 'v1');

    const agent = startAgentChild(storageRoot, stateDir, { phaseFd: 3 }, log, node);
    const seen: string[] = [];
    let onPhase: (name: string) => void = (name) => name !== 'infect' && hook.step();
    const hook = phaseHook(agent, (name) => {
      seen.push(name);
      onPhase(name);
    });
    // Held at the infection; the API server goes down; the dump then runs to its end (its images on
    // disk) with the API server down, and the agent's status write meets a dead server; then it is back.
    await waitFor('the agent to infect the process', () => seen.includes('infect'), 30000);
    await cluster.cp.restartApiServer(async () => {
      onPhase = () => hook.step();
      hook.step(); // go on from the infection
      await waitFor('the dump to reach its images', () => seen.includes('images'), 30000);
      await waitFor('the images to be written', () => {
        const dir = fs.existsSync(path.join(storageRoot, 'team-d')) ? fs.readdirSync(path.join(storageRoot, 'team-d')) : [];
        return dir.some((d) => fs.existsSync(path.join(storageRoot, 'team-d', d, 'app', 'cryopod-manifest.json')));
      }, 30000);
    });
    const cp = await waitForPhase(cluster.admin, 'team-d', 'ckpt-api', ['Succeeded', 'Failed'], 60000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    if (cp.status?.phase === 'Failed') expect(ready?.reason).toMatch(/^[A-Z][A-Za-z]+$/);
    else expect(ready?.reason).toBe('Succeeded');
    process.stdout.write(`after an API server restart mid-checkpoint: ${cp.status?.phase} ${ready?.reason}: ${ready?.message}\n`);
    await expectRunningThawedUntraced(ctr);
    expect(fs.readFileSync(`/proc/${ctr.pid}/maps`, 'utf8')).not.toContain('cryopod-parasite');
  });

  test('the disk full while dumping: Failed/DumpFailed with ENOSPC, no partial images, the pod unharmed', async () => {
    const node = 'node-e';
    const { storageRoot, stateDir, log, ctr } = await podWithDispatchedCheckpoint(node, 'team-e', 'full', 'v2');
    fs.mkdirSync(storageRoot, { recursive: true });
    // Room enough for the space check before the freeze (node-agent/space-check.ts); the disk is then
    // filled while the process is seized, so the dump itself meets ENOSPC.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', storageRoot]);
    cleanups.push(() => void execFileSync('umount', ['-l', storageRoot]));
    const agent = startAgentChild(storageRoot, stateDir, { phaseFd: 3 }, log, node);
    let filled = false;
    const hook = phaseHook(agent, (name) => {
      if (name === 'seize' && !filled) {
        filled = true;
        const chunk = Buffer.alloc(1 << 20, 1);
        try {
          for (;;) fs.appendFileSync(path.join(storageRoot, 'filler'), chunk);
        } catch {
          // ENOSPC: the disk is full now
        }
      }
      hook.step();
    });
    const cp = await waitForPhase(cluster.admin, 'team-e', 'ckpt-full', ['Succeeded', 'Failed'], 60000);
    const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
    expect({ phase: cp.status?.phase, reason: ready?.reason }).toEqual({ phase: 'Failed', reason: 'DumpFailed' });
    expect(ready?.message).toMatch(/ENOSPC/);
    const left: string[] = [];
    const walk = (d: string): void => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(path.join(d, e.name)) : left.push(path.join(d, e.name));
    };
    walk(storageRoot);
    expect(filled).toBe(true);
    expect(left.filter((f) => f.endsWith('.img') || f.endsWith('cryopod-manifest.json'))).toEqual([]);
    await expectRunningThawedUntraced(ctr);
    expect(fs.readFileSync(`/proc/${ctr.pid}/maps`, 'utf8')).not.toContain('cryopod-parasite');
  });
});
