/**
 * The native page dump alone, for the benchmark: the pages of a running task into one file (which may
 * be /dev/null), no other image written. The task is always left running (a measurement never kills
 * what it measures); dumpProcess is what makes a checkpoint.
 */
import { dumpTask } from '../native/lib';
import type { DumpMethod } from '../native/lib';

export interface PageDumpMeasure {
  frozenSeconds: number;
  /** Time spent moving page data (part of the frozen time, unless snapshot). */
  pagesSeconds: number;
  bytes: number;
  /** With snapshot: pages the task rewrote while they were written (the snapshot's extra memory). */
  snapshotPrivateBytes?: number;
}

export async function measurePageDump(opts: { pid: number; pagesPath: string; method: DumpMethod; snapshot?: boolean }): Promise<PageDumpMeasure> {
  const task = await dumpTask({ pid: opts.pid, pagesPath: opts.pagesPath, leaveRunning: true, method: opts.method, snapshot: !!opts.snapshot });
  if (task.pagesSeconds === undefined) throw new Error('internal: the native dump did not time its page moving');
  return {
    frozenSeconds: task.frozenSeconds,
    pagesSeconds: task.pagesSeconds,
    bytes: task.pages.reduce((n, r) => n + r.nrPages, 0) * 4096,
    ...(task.snapshot ? { snapshotPrivateBytes: task.snapshot.privateBytes } : {}),
  };
}
