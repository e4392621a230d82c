/** Small, tolerant readers of /proc/PID files: a process may exit between any two reads. */
import * as fs from 'fs';

export const PROC = '/proc';

export function readText(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Every numeric entry of /proc (thread-group leaders). */
export function listPids(proc = PROC): number[] {
  return fs
    .readdirSync(proc)
    .filter((n) => /^[1-9][0-9]*$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

export interface ProcStatus {
  ppid: number;
  tracerPid: number;
  state: string;
}

export function parseStatus(text: string): ProcStatus {
  const field = (name: string): string => {
    const m = new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text);
    if (!m) throw new Error(`/proc status has no ${name} line`);
    return m[1].trim();
  };
  return { ppid: Number(field('PPid')), tracerPid: Number(field('TracerPid')), state: field('State').charAt(0) };
}

export function readStatus(pid: number, proc = PROC): ProcStatus | undefined {
  const t = readText(`${proc}/${pid}/status`);
  return t === undefined ? undefined : parseStatus(t);
}

/**
 * The process start time (field 22 of /proc/PID/stat, clock ticks since boot): with the PID, it names a
 * process uniquely, so a PID reused by a new process is never mistaken for the one we resolved.
 */
export function readStartTime(pid: number, proc = PROC): string | undefined {
  const t = readText(`${proc}/${pid}/stat`);
  if (t === undefined) return undefined;
  const rest = t.slice(t.lastIndexOf(')') + 2).split(' ');
  return rest[19];
}

/** PIDs of every thread group that some thread of `pid` traces (TracerPid != 0), from each thread's status. */
export function tracedThreads(pid: number, proc = PROC): Array<{ tid: number; tracerPid: number }> {
  let tids: string[];
  try {
    tids = fs.readdirSync(`${proc}/${pid}/task`);
  } catch {
    return [];
  }
  const out: Array<{ tid: number; tracerPid: number }> = [];
  for (const t of tids) {
    const st = readText(`${proc}/${pid}/task/${t}/status`);
    if (st === undefined) continue;
    const tracerPid = parseStatus(st).tracerPid;
    if (tracerPid !== 0) out.push({ tid: Number(t), tracerPid });
  }
  return out;
}
