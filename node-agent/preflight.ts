/**
 * The file-layer preflight of a pod's containers, before the agent journals or freezes anything: every
 * fd of every process the agent resolved in each container's cgroup goes through the checkpoint
 * library's checkProcess (/proc only: nothing is stopped, frozen or traced). If any object cannot be
 * saved, the work ends Failed/Unsupported with a message naming each refused object (pid, fd, object,
 * kind, why), and no container of the pod is frozen: every container is checked before the first dump.
 *
 * The native dump runs the same check and would refuse too, but only once the agent has journalled the
 * cgroup and the core has frozen it: the user's pod would pause for an answer known beforehand.
 */
import { checkProcess } from '../checkpoint';
import type { FdReport } from '../checkpoint';
import { Reason } from '../kube';
import { WorkError } from './work-error';

/** The containers to check: each one's name and the PIDs resolved in its cgroup. */
export interface PreflightTarget {
  name: string;
  pids: number[];
}

export type CheckFn = (pid: number) => Promise<FdReport[]>;

/** A refused object is listed in full up to this many; the rest are counted (a condition message stays short). */
export const MAX_LISTED = 8;

/**
 * Runs the preflight over every PID of every container; throws WorkError(Unsupported) when anything
 * is refused. Each PID's report covers its descendants too, so an fd seen twice is reported once.
 */
export async function preflightContainers(targets: PreflightTarget[], check: CheckFn = checkProcess): Promise<void> {
  const refused: Array<{ container: string; report: FdReport }> = [];
  for (const t of targets) {
    const seen = new Set<string>();
    for (const pid of t.pids) {
      for (const r of await check(pid)) {
        const key = `${r.pid}/${r.fd}`;
        if (seen.has(key)) continue;
        seen.add(key);
        if (r.verdict === 'refused') refused.push({ container: t.name, report: r });
      }
    }
  }
  const message = refusalMessage(refused);
  if (message) throw new WorkError(Reason.Unsupported, message, { code: 'EUNSUPPORTED' });
}

/** One refused object: "container app: pid 41 fd 3 anon_inode:[io_uring] (kind -): why". */
function describe(container: string, r: FdReport): string {
  return `container ${container}: pid ${r.pid} fd ${r.fd} ${r.object} (kind ${r.kind || '-'}): ${r.note || 'refused'}`;
}

/** The Failed message for these refusals, or undefined when there are none. */
export function refusalMessage(refused: Array<{ container: string; report: FdReport }>): string | undefined {
  if (refused.length === 0) return undefined;
  const n = refused.length;
  const listed = refused.slice(0, MAX_LISTED).map((x) => describe(x.container, x.report));
  const more = n > MAX_LISTED ? [`and ${n - MAX_LISTED} more`] : [];
  return `preflight: ${n} object${n > 1 ? 's' : ''} cannot be saved, nothing was frozen: ${[...listed, ...more].join('; ')}`;
}
