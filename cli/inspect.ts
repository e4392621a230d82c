/** `cryopod inspect`: what a checkpoint holds, as a table or JSON, read through the verifying reader. */
import { readCheckpoint, summarize, formatSummary } from '../images';
import type { VmaRow } from '../images';
import { checkReadableDir } from '../checkpoint';

export interface InspectReport {
  dir: string;
  pid: number;
  comm: string;
  exe: string;
  /** Threads, the main one included. */
  threads: number;
  vmas: VmaRow[];
  files: Array<{ fd: number; kind: string; path: string; pos: number }>;
  totalPages: number;
  totalBytes: number;
  frozenSeconds: number;
}

export async function inspectImages(dir: string): Promise<InspectReport> {
  const abs = checkReadableDir(dir);
  const { task } = await readCheckpoint(abs);
  const s = summarize(task);
  return {
    dir: abs,
    pid: task.pid,
    comm: task.comm,
    exe: task.exe,
    threads: 1 + task.threads.length,
    vmas: s.rows,
    files: task.files.map((f) => ({ fd: f.fd, kind: f.kind, path: f.path, pos: f.pos })),
    totalPages: s.totals.pages,
    totalBytes: s.totals.bytes,
    frozenSeconds: task.frozenSeconds,
  };
}

export function formatInspect(r: InspectReport): string {
  const lines = [`checkpoint ${r.dir}`, `exe ${r.exe}`];
  lines.push(
    formatSummary({
      pid: r.pid,
      comm: r.comm,
      rows: r.vmas,
      threads: r.threads,
      totals: { vmas: r.vmas.length, mappedBytes: r.vmas.reduce((n, v) => n + v.size, 0), pages: r.totalPages, bytes: r.totalBytes },
    }),
  );
  lines.push('fd  kind     pos         path');
  for (const f of r.files) lines.push(`${String(f.fd).padEnd(3)} ${f.kind.padEnd(8)} ${String(f.pos).padEnd(11)} ${f.path}`);
  return lines.join('\n');
}
