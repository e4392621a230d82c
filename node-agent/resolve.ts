/**
 * Pod → containers → host PIDs, from /proc alone (no CRI socket): a process belongs to a container when
 * its cgroup path names the pod UID and, below it, the container ID (cgroup-path.ts). The container's main
 * process is the one whose parent is not in the same container (the lowest such PID if there are several).
 *
 * Freezer choice per container: the v1 freezer hierarchy when the process's freezer cgroup is the pod's
 * (kubelet with cgroup v1), else the v2 hierarchy when its unified path is (cgroup v2 nodes).
 *
 * The cgroup directory: /proc/PID/cgroup paths are relative to the reader's cgroup namespace, and a
 * Kubernetes pod cannot ask for the host cgroup namespace, so an agent in a private one sees paths like
 * /../../kubepods/… and a mount root that is not the host's. So the path is used as it is only when the
 * process is listed in that directory's cgroup.procs; otherwise the pod's directory is found by its name
 * (pod<uid>, or …-pod<uid_>.slice) below the mounted hierarchy, and the rest of the path below it. Either
 * way the process must be in the cgroup.procs of the directory found.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CgroupMount, CgroupMounts, cgroupDir } from './cgroup-mounts';
import { CgroupLine, matchContainerPath, parseContainerID, parseProcCgroup } from './cgroup-path';
import { FreezerRef } from './freezer';
import { PROC, listPids, readStartTime, readStatus, readText } from './procfs';
import { Reason } from '../kube';
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
    const at = mine.find((p) => p.pid === mainPid)?.at ?? procs[0].at;
    const podDir = locatePodDir(mount, at, mainPid);
    if (!podDir) {
      throw new WorkError(Reason.DumpFailed, `container ${c.name}: the cgroup ${at.cgPath} of process ${mainPid} was not found below ${mount.mountPoint} (is the host's cgroup tree mounted there?)`, { code: 'ENOCGROUP' });
    }
    return {
      name: c.name,
      containerID: c.containerID,
      pids,
      mainPid,
      mainStartTime,
      cgroupPath: containerPath,
      freezer: { kind, path: path.join(podDir, containerPath.slice(at.podPath.length)) },
      podFreezer: { kind, path: podDir },
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

/** True when pid is listed in <dir>/cgroup.procs. */
function listsPid(dir: string, pid: number): boolean {
  const text = readText(path.join(dir, 'cgroup.procs'));
  return !!text && text.split('\n').includes(String(pid));
}

/**
 * Directories below `root` named `name`, shallowest first, at most maxDepth levels down (a match is not
 * searched below); symlinks are not followed (the agent never leaves the mounted hierarchy).
 */
export function findDirsNamed(root: string, name: string, maxDepth = 6): string[] {
  const out: string[] = [];
  let level = [root];
  for (let depth = 0; depth < maxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of level) {
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const p = path.join(dir, e.name);
        if (e.name === name) out.push(p);
        else next.push(p);
      }
    }
    level = next;
  }
  return out;
}

/**
 * The pod's cgroup directory in this hierarchy: by the path as /proc shows it when that directory (with the
 * process's own sub-path) lists the process, else by the pod directory's name. Undefined when neither does.
 */
export function locatePodDir(mount: CgroupMount, at: { podPath: string; cgPath: string }, pid: number): string | undefined {
  const below = at.cgPath.slice(at.podPath.length);
  try {
    const direct = cgroupDir(mount, at.podPath);
    if (!at.podPath.split('/').includes('..') && listsPid(path.join(direct, below), pid)) return direct;
  } catch {
    // outside the mounted root as /proc shows it: a private cgroup namespace; search below
  }
  const name = path.posix.basename(at.podPath);
  return findDirsNamed(mount.mountPoint, name).find((d) => listsPid(path.join(d, below), pid));
}
