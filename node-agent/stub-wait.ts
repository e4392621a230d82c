/**
 * Waiting for a restore pod's app containers to run the restore stub (the operator made each container's
 * command /cryopod/cryopod-stub; with no fd 3 the stub pauses until the agent morphs it).
 *
 * A container is ready when status.containerStatuses names it running with a containerID, and its cgroup
 * (found from /proc like a checkpoint's, resolve.ts) holds exactly one process, single-threaded, whose
 * /proc/PID/exe is a cryopod-stub. Anything else (no process yet, a second process, another program) is
 * "not ready" with the reason, and the reason of the last look is what a timeout reports.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { V1Pod } from '@kubernetes/client-node';
import { CgroupMounts } from './cgroup-mounts';
import { PROC, readText } from './procfs';
import { ContainerRef, ResolvedContainer, resolveContainers } from './resolve';

export const STUB_NAME = 'cryopod-stub';

export interface ReadyStub {
  container: ResolvedContainer;
  pid: number;
  startTime: string;
}

/** The program a process runs, as /proc/PID/exe reads (in the process's mount namespace), or undefined. */
export function exeOf(pid: number, proc = PROC): string | undefined {
  try {
    return fs.readlinkSync(`${proc}/${pid}/exe`);
  } catch {
    return undefined;
  }
}

export function isStubExe(exe: string | undefined): boolean {
  return !!exe && path.posix.basename(exe.replace(/ \(deleted\)$/, '')) === STUB_NAME;
}

function threadCount(pid: number, proc: string): number | undefined {
  const m = /^Threads:\s*(\d+)$/m.exec(readText(`${proc}/${pid}/status`) ?? '');
  return m ? Number(m[1]) : undefined;
}

/** The container refs of every app container of the pod, or the reason they are not all started yet. */
export function startedContainers(pod: V1Pod): { refs: ContainerRef[] } | { notReady: string } {
  const statuses = pod.status?.containerStatuses ?? [];
  const refs: ContainerRef[] = [];
  for (const c of pod.spec?.containers ?? []) {
    const st = statuses.find((s) => s.name === c.name);
    if (!st?.containerID) return { notReady: `container ${c.name} has no containerID yet` };
    if (!st.state?.running) {
      const why = st.state?.terminated ? `terminated (${st.state.terminated.reason ?? `exit ${st.state.terminated.exitCode}`})` : st.state?.waiting ? `waiting (${st.state.waiting.reason ?? ''})` : 'not running';
      return { notReady: `container ${c.name} is ${why}` };
    }
    refs.push({ name: c.name, containerID: st.containerID });
  }
  if (refs.length === 0) return { notReady: 'the pod has no app containers' };
  return { refs };
}

/** One look: every container's waiting stub, or why not (yet). Never throws for a missing process. */
export function findStubs(pod: V1Pod, mounts: CgroupMounts, proc = PROC): { stubs: ReadyStub[] } | { notReady: string } {
  const started = startedContainers(pod);
  if ('notReady' in started) return started;
  let resolved: ResolvedContainer[];
  try {
    resolved = resolveContainers(pod.metadata?.uid as string, started.refs, mounts, proc);
  } catch (err) {
    return { notReady: (err as Error).message };
  }
  const stubs: ReadyStub[] = [];
  for (const c of resolved) {
    if (c.pids.length !== 1) return { notReady: `container ${c.name} has ${c.pids.length} processes (${c.pids.join(', ')}), expected only the restore stub` };
    const pid = c.pids[0];
    const exe = exeOf(pid, proc);
    if (!isStubExe(exe)) return { notReady: `container ${c.name}: process ${pid} runs ${exe ?? '(unknown)'}, not the restore stub ${STUB_NAME}` };
    if (threadCount(pid, proc) !== 1) return { notReady: `container ${c.name}: stub ${pid} is not single-threaded (not a waiting stub)` };
    stubs.push({ container: c, pid, startTime: c.mainStartTime });
  }
  return { stubs };
}

/**
 * Why a stub that findStubs saw waiting may have been touched by an agent that died (undefined: it was
 * not). A restorer seizes with PTRACE_O_EXITKILL: once its tracer is gone the stub has a SIGKILL pending
 * (or is past it, dying), so an untouched stub is untraced, asleep in its wait, with no SIGKILL pending.
 */
export function untouchedStubProblem(pid: number, proc = PROC): string | undefined {
  const status = readText(`${proc}/${pid}/status`);
  if (!status) return `stub ${pid} is gone`;
  const field = (name: string): string => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1] ?? '';
  if (field('TracerPid') !== '0') return `stub ${pid} is traced by pid ${field('TracerPid')}`;
  if (field('State') !== 'S') return `stub ${pid} is in state ${field('State')}, not waiting`;
  const sigkill = 1n << 8n; // SIGKILL is signal 9: bit 8
  for (const f of ['SigPnd', 'ShdPnd']) if ((BigInt(`0x${field(f) || '0'}`) & sigkill) !== 0n) return `stub ${pid} is being killed`;
  return undefined;
}
