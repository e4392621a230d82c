/**
 * Work found in Running, claimed by an earlier instance of this agent on this node (it was killed or
 * restarted in the middle). The choice: do not retry; make the pod safe and fail the work clearly.
 *
 *   1. thaw: every cgroup of the pod's containers (and the pod's own) that reads frozen is thawed (the
 *      freeze journal has already thawed what the earlier instance recorded; this also covers a journal
 *      on a lost disk);
 *   2. untrace: a tracer that died detached its tracees (the kernel does that); we wait until TracerPid
 *      reads 0 for every thread, and say so in the message if one stays traced; and every process of the
 *      pod is rescued (checkpoint/ rescueProcess): one parked in the parasite is put back, a snapshot
 *      child reaped (the journal, or the dump's guard, have normally done it already; this covers a
 *      journal on a lost disk; a group stop is left alone: without the journal we cannot tell it was ours);
 *   3. remove the partial image directory: half-written images are never reported as a checkpoint;
 *   4. mark the Checkpoint Failed, reason AgentRestarted, with an Event.
 *
 * Why not retry once: the earlier instance may have got as far as killing the task (leaveRunning: false)
 * or may have written part of the images; a second attempt would double the downtime the user accepted,
 * and the operator owns deadlines. Creating a new Checkpoint is the retry; this one ends visibly.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { rescueProcess } from '../checkpoint';
import { CgroupMounts } from './cgroup-mounts';
import { FreezerRef, isFrozenOrFreezing, thaw } from './freezer';
import { selectContainers } from './pod-containers';
import { PROC, tracedThreads } from './procfs';
import { resolveContainers } from './resolve';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface MadeSafe {
  thawed: string[];
  /** Processes that still held the parasite or a snapshot child of the dead agent's dump, put back. */
  rescued: number[];
  stillTraced: Array<{ pid: number; tid: number; tracerPid: number }>;
  /** Why the pod's processes could not be examined (pod gone, container gone), if so. */
  note?: string;
}

export async function makePodSafe(pod: V1Pod | undefined, wanted: string[] | undefined, mounts: CgroupMounts, proc = PROC): Promise<MadeSafe> {
  const out: MadeSafe = { thawed: [], rescued: [], stillTraced: [] };
  if (!pod?.metadata?.uid) return { ...out, note: 'the pod no longer exists' };
  let containers;
  try {
    containers = resolveContainers(pod.metadata.uid, selectContainers(pod, wanted), mounts, proc);
  } catch (err) {
    return { ...out, note: `its processes could not be found (${(err as Error).message})` };
  }
  const refs = new Map<string, FreezerRef>();
  for (const c of containers) {
    refs.set(c.podFreezer.path, c.podFreezer);
    refs.set(c.freezer.path, c.freezer);
  }
  // Parents first: a v1 child cannot thaw while its parent is frozen.
  for (const ref of [...refs.values()].sort((a, b) => a.path.length - b.path.length)) {
    if (isFrozenOrFreezing(ref)) {
      await thaw(ref);
      out.thawed.push(ref.path);
    }
  }
  const pids = containers.flatMap((c) => c.pids);
  for (const pid of pids) {
    try {
      const r = await rescueProcess({ pid });
      if (r.infected || r.childrenReaped > 0) out.rescued.push(pid);
    } catch {
      // still traced by someone: reported below
    }
  }
  const deadline = Date.now() + 5000;
  for (;;) {
    out.stillTraced = pids.flatMap((pid) => tracedThreads(pid, proc).map((t) => ({ pid, ...t })));
    if (out.stillTraced.length === 0 || Date.now() > deadline) break;
    await sleep(50);
  }
  return out;
}

export function recoveryMessage(previous: string, safe: MadeSafe): string {
  const parts = [`the agent restarted while this checkpoint was running (claimed by ${previous}); it was not retried: create a new Checkpoint`];
  if (safe.note) parts.push(`pod not examined: ${safe.note}`);
  else parts.push(safe.thawed.length ? `thawed ${safe.thawed.join(', ')}` : 'the pod was not frozen');
  if (safe.rescued.length) parts.push(`put back from the parasite: pid ${safe.rescued.join(', ')}`);
  if (safe.stillTraced.length) parts.push(`still traced: ${safe.stillTraced.map((t) => `${t.tid} by ${t.tracerPid}`).join(', ')}`);
  parts.push('partial images removed');
  return parts.join('; ');
}
