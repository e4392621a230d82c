/**
 * The disk-pressure check before a dump starts: is there room on the image directory's filesystem for
 * the images these processes will make? Read from /proc and statfs only, before anything is journalled,
 * frozen or traced, so a refusal leaves the pod exactly as it was.
 *
 *   expected = Σ over the processes (Pss_Anon + SwapPss from /proc/PID/smaps_rollup) × 1.05 + 1 MiB each
 *
 * The pages image holds the private anonymous pages (and copy-on-write pages of private file mappings,
 * which the kernel counts as anonymous) that are present or swapped; the proportional counts (Pss) split a
 * page shared copy-on-write by a parent and its children among them, and the dump writes it once. The
 * margin covers the metadata images (page maps, VMAs, files: kilobytes per process) and the manifest.
 * Shared memory (MAP_SHARED, memfd, SysV) is not counted here: a dump that still runs out of space fails
 * (ENOSPC) and thaws the pod as any failed dump does.
 */
import * as fs from 'node:fs';
import { Reason } from '../kube';
import { PROC, readText } from './procfs';
import { WorkError } from './work-error';

const MiB = 1 << 20;
const PER_PROCESS_BYTES = MiB;
const MARGIN = 1.05;

/** kB fields of /proc/PID/smaps_rollup, in bytes; undefined when the process is gone. */
function rollup(pid: number, proc: string): Map<string, number> | undefined {
  const text = readText(`${proc}/${pid}/smaps_rollup`);
  if (text === undefined) return undefined;
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out.set(m[1], Number(m[2]) * 1024);
  return out;
}

/** The bytes a dump of these processes is expected to write (see the header). */
export function expectedImageBytes(pids: number[], proc = PROC): number {
  let pages = 0;
  let processes = 0;
  for (const pid of pids) {
    const r = rollup(pid, proc);
    if (!r) continue;
    processes++;
    // Older kernels have no Pss_Anon / SwapPss: the plain counts then (an over-estimate for a tree).
    pages += (r.get('Pss_Anon') ?? r.get('Anonymous') ?? 0) + (r.get('SwapPss') ?? r.get('Swap') ?? 0);
  }
  return Math.ceil(pages * MARGIN) + processes * PER_PROCESS_BYTES;
}

/** Bytes an unprivileged writer may still use on the filesystem holding dir. */
export function freeBytes(dir: string): number {
  const st = fs.statfsSync(dir);
  return Number(st.bavail) * Number(st.bsize);
}

export interface SpaceNeed {
  container: string;
  pids: number[];
}

/**
 * Throws WorkError InsufficientStorage when the expected images of every container together do not fit
 * in what the filesystem of `dir` has free, naming both figures and each container's share.
 */
export function checkSpace(dir: string, needs: SpaceNeed[], proc = PROC): { expected: number; free: number } {
  const each = needs.map((n) => ({ name: n.container, bytes: expectedImageBytes(n.pids, proc) }));
  const expected = each.reduce((s, e) => s + e.bytes, 0);
  const free = freeBytes(dir);
  if (expected > free) {
    const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
    throw new WorkError(
      Reason.InsufficientStorage,
      `not enough space for the images: the filesystem of ${dir} has ${mib(free)} free, the dump needs about ${mib(expected)} (${each.map((e) => `${e.name} ${mib(e.bytes)}`).join(', ')}); nothing was frozen`,
    );
  }
  return { expected, free };
}
