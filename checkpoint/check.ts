/**
 * The preflight of a dump (`cryopod dump --check`, and the agent before it freezes anything): every fd
 * the process tree rooted at `pid` holds, each with its verdict: 'saved', 'external' (a pipe held outside
 * the tree too, re-attached on restore) or 'refused' (why in `note`). Reads /proc only: nothing is
 * stopped. A dump runs the same check first and refuses before stopping anything.
 */
import { preflight } from '../native/lib';
import type { FdReport } from '../native/lib';

export async function checkProcess(pid: number): Promise<FdReport[]> {
  return preflight(pid);
}

/** Whether a preflight found nothing that would make the dump refuse. */
export function allSaveable(reports: FdReport[]): boolean {
  return reports.every((r) => r.verdict !== 'refused');
}
