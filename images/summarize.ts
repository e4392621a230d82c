/**
 * summarize: what `cryopod inspect` prints about a task's memory, as data (pure; no I/O). The thread
 * count, one row per VMA with the pages the checkpoint holds for it, and totals. For a process tree:
 * one such summary per task (plus its parent and the pages it shares with it), and tree-wide totals.
 */

import { DumpedTask, DumpedTree, Vma, VmaKind } from '../native/lib/types';
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
  /** In a tree: the parent's pid (absent for the root and for a single task). */
  ppid?: number;
  /** In a tree: pages still shared copy-on-write with the parent, not in the pages file (absent when none). */
  inheritedPages?: number;
}

export interface TreeSummary {
  /** One summary per task, in tree order (root first). */
  tasks: Summary[];
  /** Bytes held in pipes between the tasks. */
  pipeBytes: number;
  totals: { tasks: number; threads: number; vmas: number; mappedBytes: number; pages: number; bytes: number; inheritedPages: number };
}

export function protString(v: Pick<Vma, 'prot' | 'flags'>): string {
  return (
    (v.prot & 1 ? 'r' : '-') + (v.prot & 2 ? 'w' : '-') + (v.prot & 4 ? 'x' : '-') + ((v.flags & MAP_SHARED) !== 0 ? 's' : 'p')
  );
}

/**
 * Pages per VMA: the overlap of each run with each VMA (runs need not be sorted or well-formed). One
 * sweep over both sorted by address, not every run against every VMA: a checkpoint may hold 64 Ki VMAs
 * and a quarter of a million runs.
 */
function pagesPerVma(task: DumpedTask): number[] {
  const counts = task.vmas.map(() => 0);
  const vmas = task.vmas.map((v, i) => ({ v, i })).sort((a, b) => a.v.start - b.v.start);
  const runs = [...task.pages].sort((a, b) => a.vaddr - b.vaddr);
  let first = 0; // VMAs before it end before the current run starts, so before every later one too
  for (const r of runs) {
    const rEnd = r.vaddr + r.nrPages * PAGE_SIZE;
    while (first < vmas.length && vmas[first].v.end <= r.vaddr) first++;
    for (let k = first; k < vmas.length && vmas[k].v.start < rEnd; k++) {
      const { v, i } = vmas[k];
      const lo = Math.max(v.start, r.vaddr);
      const hi = Math.min(v.end, rEnd);
      if (hi > lo) counts[i] += Math.floor((hi - lo) / PAGE_SIZE);
    }
  }
  return counts;
}

function summarizeTask(task: DumpedTask): Summary {
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

/**
 * A task's summary, or a tree's: a DumpedTree of one task without pipes is summarized as that task,
 * so single-task checkpoints print as they always did.
 */
export function summarize(task: DumpedTask): Summary;
export function summarize(tree: DumpedTree): Summary | TreeSummary;
export function summarize(input: DumpedTask | DumpedTree): Summary | TreeSummary {
  if (!('tasks' in input)) return summarizeTask(input);
  if (input.tasks.length === 1 && input.pipes.length === 0) return summarizeTask(input.tasks[0]);
  const tasks = input.tasks.map((t, i): Summary => {
    const s = summarizeTask(t);
    if (i > 0) s.ppid = t.ppid;
    const inherited = (t.inherited ?? []).reduce((n, r) => n + r.nrPages, 0);
    if (inherited > 0) s.inheritedPages = inherited;
    return s;
  });
  const sum = (f: (s: Summary) => number): number => tasks.reduce((n, s) => n + f(s), 0);
  return {
    tasks,
    pipeBytes: input.pipes.reduce((n, p) => n + p.data.length, 0),
    totals: {
      tasks: tasks.length,
      threads: sum((s) => s.threads ?? 1),
      vmas: sum((s) => s.totals.vmas),
      mappedBytes: sum((s) => s.totals.mappedBytes),
      pages: sum((s) => s.totals.pages),
      bytes: sum((s) => s.totals.bytes),
      inheritedPages: sum((s) => s.inheritedPages ?? 0),
    },
  };
}

export function isTreeSummary(s: Summary | TreeSummary): s is TreeSummary {
  return 'tasks' in s;
}

/**
 * The summary as a text table, for the CLI. A tree: one block per task (as a single task's, its first
 * line naming the parent, a line for inherited pages when there are any), a blank line between
 * blocks, then the tree's totals.
 */
export function formatSummary(s: Summary | TreeSummary): string {
  return [...summaryLines(s)].join('\n');
}

/**
 * formatSummary's lines one at a time, for a writer that sends them on as they come: a table of 64 Ki
 * VMAs held whole costs tens of MiB of strings before it is written (cli/hostile-memory.test.ts).
 */
export function* summaryLines(s: Summary | TreeSummary): Generator<string> {
  if (!isTreeSummary(s)) {
    yield* taskLines(s);
    return;
  }
  for (const task of s.tasks) {
    yield* taskLines(task);
    yield '';
  }
  const t = s.totals;
  yield `tree: ${t.tasks} tasks, ${t.threads} threads, ${t.vmas} VMAs, ${t.mappedBytes} bytes mapped, ${t.pages} pages (${t.bytes} bytes) dumped, ` +
    `${t.inheritedPages} pages inherited, ${s.pipeBytes} bytes in pipes`;
}

function* taskLines(s: Summary): Generator<string> {
  const hex = (n: number): string => n.toString(16).padStart(12, '0');
  yield `pid ${s.pid} (${s.comm})${s.ppid === undefined ? '' : `, child of ${s.ppid}`}`;
  if (s.threads !== undefined) yield `threads ${s.threads}`;
  yield `${'start'.padEnd(12)}-${'end'.padEnd(12)} prot  ${'kind'.padEnd(12)} ${'pages'.padStart(8)} ${'bytes'.padStart(12)}  name`;
  for (const r of s.rows) {
    yield `${hex(r.start)}-${hex(r.end)} ${r.prot}  ${r.kind.padEnd(12)} ${String(r.pages).padStart(8)} ${String(r.bytes).padStart(12)}  ${r.name}`;
  }
  yield `${s.totals.vmas} VMAs, ${s.totals.mappedBytes} bytes mapped, ${s.totals.pages} pages (${s.totals.bytes} bytes) dumped`;
  if (s.inheritedPages !== undefined) yield `${s.inheritedPages} pages (${s.inheritedPages * PAGE_SIZE} bytes) shared with the parent, not dumped`;
}
