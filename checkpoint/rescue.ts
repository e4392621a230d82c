/**
 * Putting back a process whose dumper died before it finished (the dump's guard does it at once;
 * the node agent's freeze journal at its next start, for a guard that died with it).
 */
import * as fs from 'fs';
import { rescueTask } from '../native/lib';
import type { RescueReport } from '../native/lib';

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
    return { gone: true, infected: false, registersRestored: false, fdsClosed: 0, childrenReaped: 0, resumed: false };
  }
  return rescueTask({
    pid: opts.pid,
    ...(opts.childrenSince !== undefined ? { childrenSince: opts.childrenSince } : {}),
    resumeStopped: !!opts.resumeStopped,
  });
}
