/**
 * `cryopod dump --check --pid N`: the preflight (checkpoint/check.ts: /proc only, nothing stopped) as a
 * table, one line per fd of the tree: pid, fd, object, kind, verdict (saved / external / refused) and a
 * note. Exit status 0 when everything can be saved, 1 when something is refused.
 */
import type { FdReport } from '../checkpoint';

export function formatCheck(reports: FdReport[]): string {
  const rows = reports.map((r) => [String(r.pid), String(r.fd), r.object, r.kind || '-', r.verdict, r.note]);
  const head = ['PID', 'FD', 'OBJECT', 'KIND', 'VERDICT', 'NOTE'];
  const width = head.slice(0, 5).map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]): string => row.map((c, i) => (i < 5 ? c.padEnd(width[i]) : c)).join('  ').trimEnd();
  const refused = reports.filter((r) => r.verdict === 'refused').length;
  const summary = refused === 0 ? 'every object can be saved' : `${refused} object${refused > 1 ? 's' : ''} cannot be saved: the dump would refuse`;
  return [line(head), ...rows.map(line), summary].join('\n');
}
