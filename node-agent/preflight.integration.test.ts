/**
 * The agent's preflight against a real kube-apiserver (testenv) and a real process on this kernel: a
 * container whose process holds an io_uring fd (native/test/files/io-uring-holder.c, which the file
 * layer cannot save) ends Failed/Unsupported with a message naming io_uring and the fd, and the pod is
 * never paused: sampled all along, its cgroup is never FROZEN, the process never in state t/T or traced,
 * the freeze journal never has an entry, and its progress counter keeps moving.
 */
import * as fs from 'fs';
import * as path from 'path';
import { freezerState } from './freezer';
import { readStatus } from './procfs';
import { startInProcessAgent } from './test/test-agent';
import type { InProcessAgent } from './test/test-agent';
import { adoptIntoFakeContainer } from './test/test-cgroup-pod';
import { TestCluster, createDispatchedCheckpoint, createNamespace, createPod, eventsFor, setContainerRunning, startTestCluster, waitForPhase } from './test/test-cluster';
import { cleanup as cleanupVictims, readProgress, waitForProgress } from '../native/test/harness';
import { startFilesVictim } from '../native/test/files/harness';
import { waitFor } from '../testenv';

jest.setTimeout(180000);

const NODE = 'node-p';
const ns = 'team-p';
let cluster: TestCluster;
let running: InProcessAgent;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => {
  cluster = await startTestCluster();
  await createNamespace(cluster.admin, ns);
  running = await startInProcessAgent(cluster, NODE, 'agent-preflight');
}, 600000);

afterAll(async () => {
  await running?.stop();
  for (const c of cleanups.reverse()) await c();
  await cleanupVictims();
  await cluster?.stop();
});

/** What a sampler saw of the container while the agent worked. */
interface Seen {
  samples: number;
  frozen: string[];
  stopped: string[];
  traced: number[];
  journalled: string[];
}

/** Samples the freezer, the process state and the journal as often as the event loop allows, until stop(). */
function watchNeverPaused(pid: number, freezer: { kind: 'v1' | 'v2'; path: string }): { stop(): Promise<Seen> } {
  const seen: Seen = { samples: 0, frozen: [], stopped: [], traced: [], journalled: [] };
  const journalDir = path.join(running.stateDir, NODE, 'freezes');
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const f = freezerState(freezer);
      if (f !== 'thawed') seen.frozen.push(f);
      const st = readStatus(pid);
      if (st && /^[tT]/.test(st.state)) seen.stopped.push(st.state);
      const tracer = Number(/^TracerPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
      if (tracer !== 0) seen.traced.push(tracer);
      if (fs.existsSync(journalDir)) seen.journalled.push(...fs.readdirSync(journalDir));
      seen.samples++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  return {
    stop: async () => {
      sampling = false;
      await loop;
      return seen;
    },
  };
}

test.each(['v1', 'v2'] as const)('a container holding an io_uring fd (cgroup %s): Failed/Unsupported naming it, never frozen, stopped or traced', async (kind) => {
  const podName = `uring-${kind}`;
  const pod = await createPod(cluster.admin, ns, podName, NODE);
  const uid = pod.metadata?.uid as string;
  const victim = await startFilesVictim('io-uring-holder');
  const ctr = adoptIntoFakeContainer(kind, uid, victim.pid);
  cleanups.push(() => ctr.destroy());
  await setContainerRunning(cluster.admin, pod, ctr.containerID);
  const ringFd = fs.readdirSync(`/proc/${victim.pid}/fd`).find((fd) => fs.readlinkSync(`/proc/${victim.pid}/fd/${fd}`).includes('io_uring'));
  expect(ringFd).toBeDefined();
  const progressBefore = await waitForProgress(victim.workdir, 0, 'the victim to run');

  const watcher = watchNeverPaused(victim.pid, ctr.freezer);
  const name = `ckpt-${podName}`;
  await createDispatchedCheckpoint(cluster.admin, ns, name, podName, NODE, uid);
  const cp = await waitForPhase(cluster.admin, ns, name, ['Succeeded', 'Failed']);
  const seen = await watcher.stop();

  const ready = cp.status?.conditions?.find((c) => c.type === 'Ready');
  expect({ phase: cp.status?.phase, reason: ready?.reason, status: ready?.status }).toEqual({ phase: 'Failed', reason: 'Unsupported', status: 'False' });
  expect(ready?.message).toContain('io_uring');
  expect(ready?.message).toContain(`pid ${victim.pid} fd ${ringFd} `);
  expect(ready?.message).toContain('container app');
  expect(cp.status?.imageLocation).toBeUndefined();
  expect(fs.existsSync(path.join(running.storageRoot, ns, `${name}-${cp.metadata.uid}`))).toBe(false);
  // The Event is recorded after the status write, without holding the work up: waited for.
  const events = await waitFor('the Event', async () => {
    const got = await eventsFor(cluster.admin, ns, name);
    return got.length > 0 ? got : undefined;
  }, 10000);
  expect(events.map((e) => [e.reason, e.type])).toEqual([['Unsupported', 'Warning']]);

  // Never paused, all along the work (and the sampler did sample).
  expect(seen.samples).toBeGreaterThan(10);
  expect({ frozen: seen.frozen, stopped: seen.stopped, traced: seen.traced, journalled: seen.journalled }).toEqual({ frozen: [], stopped: [], traced: [], journalled: [] });
  if (kind === 'v1') expect(fs.readFileSync(path.join(ctr.freezer.path, 'freezer.state'), 'utf8').trim()).toBe('THAWED');
  else expect(fs.readFileSync(path.join(ctr.freezer.path, 'cgroup.events'), 'utf8')).toMatch(/^frozen 0$/m);
  // And it still runs: its progress moves on after the Failed result.
  const after = readProgress(victim.workdir) as number;
  expect(after).toBeGreaterThanOrEqual(progressBefore);
  expect(await waitForProgress(victim.workdir, after, 'the victim to run on')).toBeGreaterThan(after);
});
