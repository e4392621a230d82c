/**
 * summarize: what `cryopod inspect` prints about a task's memory, as data (pure; no I/O). The thread
 * count, one row per VMA with the pages the checkpoint holds for it, and totals.
 */

import { DumpedTask, Vma, VmaKind } from '../native/lib/types';
import { PAGE_SIZE } from './magic';
import { MAP_SHARED } from './vma-status';

export interface VmaRow {
  start: number;
  end: number;
  /** Mapped size in bytes. */
  size: number;
  /** /proc/PID/maps style: r, w, x or '-', then p (private) or s (shared). */
  prot: string;
  kind: VmaKind;
  name: string;
  /** Pages of this VMA in the pages image. */
  pages: number;
  /** Bytes of this VMA in the pages image. */
  bytes: number;
}

export interface Summary {
  pid: number;
  comm: string;
  /**
   * Threads of the task, the main one included (1 for a single-threaded process), as
   * /proc/PID/status counts them. summarize() always sets it; it is optional so that a Summary put
   * together by hand without it still formats (without the threads line).
   */
  threads?: number;
  rows: VmaRow[];
  totals: { vmas: number; mappedBytes: number; pages: number; bytes: number };
}

export function protString(v: Pick<Vma, 'prot' | 'flags'>): string {
  return (
    (v.prot & 1 ? 'r' : '-') + (v.prot & 2 ? 'w' : '-') + (v.prot & 4 ? 'x' : '-') + ((v.flags & MAP_SHARED) !== 0 ? 's' : 'p')
  );
}

/** Pages per VMA: the overlap of each run with each VMA (runs need not be sorted or well-formed). */
function pagesPerVma(task: DumpedTask): number[] {
  const counts = task.vmas.map(() => 0);
  for (const r of task.pages) {
    const rEnd = r.vaddr + r.nrPages * PAGE_SIZE;
    task.vmas.forEach((v, i) => {
      const lo = Math.max(v.start, r.vaddr);
      const hi = Math.min(v.end, rEnd);
      if (hi > lo) counts[i] += Math.floor((hi - lo) / PAGE_SIZE);
    });
  }
  return counts;
}

export function summarize(task: DumpedTask): Summary {
  const counts = pagesPerVma(task);
  const rows = task.vmas.map((v, i): VmaRow => ({
    start: v.start,
    end: v.end,
    size: v.end - v.start,
    prot: protString(v),
    kind: v.kind,
    name: v.name,
    pages: counts[i],
    bytes: counts[i] * PAGE_SIZE,
  }));
  const pages = task.pages.reduce((n, r) => n + r.nrPages, 0);
  return {
    pid: task.pid,
    comm: task.comm,
    threads: 1 + task.threads.length,
    rows,
    totals: {
      vmas: rows.length,
      mappedBytes: rows.reduce((n, r) => n + r.size, 0),
      pages,
      bytes: pages * PAGE_SIZE,
    },
  };
}

/** The summary as a text table, for the CLI. */
export function formatSummary(s: Summary): string {
  const hex = (n: number): string => n.toString(16).padStart(12, '0');
  const lines = [`pid ${s.pid} (${s.comm})`];
  if (s.threads !== undefined) lines.push(`threads ${s.threads}`);
  lines.push(`${'start'.padEnd(12)}-${'end'.padEnd(12)} prot  ${'kind'.padEnd(12)} ${'pages'.padStart(8)} ${'bytes'.padStart(12)}  name`);
  for (const r of s.rows) {
    lines.push(`${hex(r.start)}-${hex(r.end)} ${r.prot}  ${r.kind.padEnd(12)} ${String(r.pages).padStart(8)} ${String(r.bytes).padStart(12)}  ${r.name}`);
  }
  lines.push(`${s.totals.vmas} VMAs, ${s.totals.mappedBytes} bytes mapped, ${s.totals.pages} pages (${s.totals.bytes} bytes) dumped`);
  return lines.join('\n');
}
