/**
 * Pod → containers → host PIDs, from /proc alone (no CRI socket): a process belongs to a container when
 * its cgroup path names the pod UID and, below it, the container ID (cgroup-path.ts). The container's main
 * process is the one whose parent is not in the same container (the lowest such PID if there are several).
 *
 * Freezer choice per container: the v1 freezer hierarchy when the process's freezer cgroup is the pod's
 * (kubelet with cgroup v1), else the v2 hierarchy when its unified path is (cgroup v2 nodes).
 */
import { CgroupMounts, cgroupDir } from './cgroup-mounts';
import { CgroupLine, matchContainerPath, parseContainerID, parseProcCgroup } from './cgroup-path';
import { FreezerRef } from './freezer';
import { PROC, listPids, readStartTime, readStatus, readText } from './procfs';
import { Reason } from '../crds/types';
import { WorkError } from './work-error';

export interface ContainerRef {
  name: string;
  /** status.containerStatuses[].containerID, e.g. containerd://<hex>. */
  containerID: string;
}

export interface ResolvedContainer extends ContainerRef {
  /** Every process (thread-group leader) in the container's cgroup, ascending. */
  pids: number[];
  mainPid: number;
  /** Start time of mainPid (see procfs.readStartTime), to detect PID reuse. */
  mainStartTime: string;
  /** The container's cgroup path in the chosen hierarchy. */
  cgroupPath: string;
  /** The container's cgroup directory and kind: what the dump freezes. */
  freezer: FreezerRef;
  /** The pod's cgroup directory, same kind. */
  podFreezer: FreezerRef;
}

interface Placement {
  kind: 'v1' | 'v2';
  podPath: string;
  containerPath: string;
  cgPath: string;
}

/** Where one process sits for this pod and container, or undefined. */
function place(lines: CgroupLine[], podUid: string, id: string): Placement | undefined {
  const v1 = lines.find((l) => l.hierarchy !== 0 && l.controllers.includes('freezer'));
  const m1 = v1 && matchContainerPath(v1.path, podUid, id);
  if (v1 && m1) return { kind: 'v1', ...m1, cgPath: v1.path };
  const v2 = lines.find((l) => l.hierarchy === 0);
  const m2 = v2 && matchContainerPath(v2.path, podUid, id);
  if (v2 && m2) return { kind: 'v2', ...m2, cgPath: v2.path };
  return undefined;
}

export function resolveContainers(podUid: string, containers: ContainerRef[], mounts: CgroupMounts, proc = PROC): ResolvedContainer[] {
  const ids = containers.map((c) => ({ ...c, id: parseContainerID(c.containerID).id }));
  const found = new Map<string, Array<{ pid: number; at: Placement }>>();
  for (const pid of listPids(proc)) {
    const text = readText(`${proc}/${pid}/cgroup`);
    if (text === undefined) continue;
    const lines = parseProcCgroup(text);
    for (const c of ids) {
      const at = place(lines, podUid, c.id);
      if (at) found.set(c.name, [...(found.get(c.name) ?? []), { pid, at }]);
    }
  }
  return ids.map((c) => {
    const procs = found.get(c.name) ?? [];
    if (procs.length === 0) {
      throw new WorkError(Reason.DumpFailed, `container ${c.name} (${c.containerID}): no process on this node is in a cgroup of pod ${podUid} and container ${c.id}`, { code: 'ENOCONTAINER' });
    }
    const kind = procs[0].at.kind;
    const containerPath = procs[0].at.containerPath;
    const mine = procs.filter((p) => p.at.kind === kind && p.at.containerPath === containerPath);
    const pids = mine.map((p) => p.pid);
    const set = new Set(pids);
    const roots = pids.filter((pid) => !set.has(readStatus(pid, proc)?.ppid ?? -1));
    const mainPid = (roots.length ? roots : pids)[0];
    const mainStartTime = readStartTime(mainPid, proc);
    if (mainStartTime === undefined) throw new WorkError(Reason.DumpFailed, `container ${c.name}: main process ${mainPid} exited`, { code: 'ESRCH' });
    const mount = kind === 'v1' ? mounts.freezerV1 : mounts.v2;
    if (!mount) throw new WorkError(Reason.DumpFailed, `container ${c.name}: no cgroup ${kind} ${kind === 'v1' ? 'freezer ' : ''}hierarchy is mounted`, { code: 'ENOCGROUP' });
    return {
      name: c.name,
      containerID: c.containerID,
      pids,
      mainPid,
      mainStartTime,
      cgroupPath: containerPath,
      freezer: { kind, path: cgroupDir(mount, containerPath) },
      podFreezer: { kind, path: cgroupDir(mount, procs[0].at.podPath) },
    };
  });
}

/**
 * Right before acting on it: the PID is still the same process (start time) and still in the container's
 * cgroup. The agent is privileged; this is what keeps it to the pod it was asked to checkpoint.
 */
export function recheckMembership(c: ResolvedContainer, podUid: string, proc = PROC): void {
  const text = readText(`${proc}/${c.mainPid}/cgroup`);
  const start = readStartTime(c.mainPid, proc);
  if (text === undefined || start !== c.mainStartTime) {
    throw new WorkError(Reason.DumpFailed, `container ${c.name}: process ${c.mainPid} exited before the dump`, { code: 'ESRCH' });
  }
  const at = place(parseProcCgroup(text), podUid, parseContainerID(c.containerID).id);
  if (!at || at.kind !== c.freezer.kind || at.containerPath !== c.cgroupPath) {
    throw new WorkError(Reason.DumpFailed, `container ${c.name}: process ${c.mainPid} left cgroup ${c.cgroupPath}; refusing to dump it`, { code: 'EPERM' });
  }
}
