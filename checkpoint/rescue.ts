/**
 * Putting back a process whose dumper died before it finished (the dump's guard does it at once;
 * the node agent's freeze journal at its next start, for a guard that died with it).
 */
import * as fs from 'fs';
import { rescueTask } from '../native/lib';
import type { RescueReport } from '../native/lib';
import { processState } from './process-state';

export type { RescueReport } from '../native/lib';

/** Clock ticks after boot at which a process started (/proc/PID/stat field 22); undefined if gone. */
export function startTicks(pid: number | 'self'): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return undefined;
  }
}

/**
 * Rescues `pid` (native/lib rescueTask). `startedAt` (its start ticks when it was recorded) guards
 * against a PID reused since: a different process is left alone. `childrenSince`: snapshot children
 * started then or later are reaped; `resumeStopped`: a group stop is the dump's, SIGCONT it.
 */
export async function rescueProcess(opts: {
  pid: number;
  startedAt?: number;
  childrenSince?: number;
  resumeStopped?: boolean;
}): Promise<RescueReport> {
  const now = startTicks(opts.pid);
  if (now === undefined || (opts.startedAt !== undefined && now !== opts.startedAt)) {
    return { gone: true, infected: false, registersRestored: false, threadsRestored: 0, fdsClosed: 0, childrenReaped: 0, resumed: false };
  }
  return rescueTask({
    pid: opts.pid,
    ...(opts.childrenSince !== undefined ? { childrenSince: opts.childrenSince } : {}),
    resumeStopped: !!opts.resumeStopped,
  });
}

/** The process's descendants, parents first (zombies left out: nothing to put back in them). */
export function livingDescendants(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    let tids: string[] = [];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {
      continue; // gone
    }
    for (const tid of tids) {
      let kids = '';
      try {
        kids = fs.readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8').trim();
      } catch {
        continue;
      }
      for (const k of kids ? kids.split(/\s+/).map(Number) : []) {
        if (processState(k) === 'Z' || out.includes(k)) continue;
        out.push(k);
        queue.push(k);
      }
    }
  }
  return out;
}

/**
 * Rescues a dumped tree: the root, then every living descendant (a tree dump infects each process with
 * its own parasite area and leaves each stopped under plain mode). `stoppedBefore`: the processes that
 * were in a group stop before the dump began (their stop is not ours to end).
 */
export async function rescueTree(opts: { pid: number; childrenSince?: number; stoppedBefore: number[] }): Promise<Array<{ pid: number; report: RescueReport }>> {
  const out: Array<{ pid: number; report: RescueReport }> = [];
  const failures: Error[] = [];
  const one = async (pid: number): Promise<void> => {
    try {
      const report = await rescueTask({
        pid,
        ...(opts.childrenSince !== undefined ? { childrenSince: opts.childrenSince } : {}),
        resumeStopped: !opts.stoppedBefore.includes(pid),
      });
      out.push({ pid, report });
    } catch (err) {
      failures.push(new Error(`pid ${pid}: ${(err as Error).message}`)); // the others are still put back
    }
  };
  await one(opts.pid);
  for (const d of livingDescendants(opts.pid)) await one(d);
  if (failures.length > 0) throw new Error(failures.map((e) => e.message).join('; '));
  return out;
}
