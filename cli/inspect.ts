/** `cryopod inspect`: what a checkpoint holds, as a table or JSON, read through the verifying reader. */
import { readCheckpoint, summarize, summaryLines } from '../images';
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

/** The report as text, one line at a time (see summaryLines). */
export function* inspectLines(r: InspectReport): Generator<string> {
  yield `checkpoint ${r.dir}`;
  yield `exe ${r.exe}`;
  yield* summaryLines({
    pid: r.pid,
    comm: r.comm,
    rows: r.vmas,
    threads: r.threads,
    totals: { vmas: r.vmas.length, mappedBytes: r.vmas.reduce((n, v) => n + v.size, 0), pages: r.totalPages, bytes: r.totalBytes },
  });
  yield 'fd  kind     pos         path';
  for (const f of r.files) yield `${String(f.fd).padEnd(3)} ${f.kind.padEnd(8)} ${String(f.pos).padEnd(11)} ${f.path}`;
}

/**
 * The report as `JSON.stringify(r, null, 2)` writes it, in pieces: the VMA rows one by one, so that the
 * JSON of a large checkpoint is never one string (see summaryLines).
 */
export function* inspectJson(r: InspectReport): Generator<string> {
  const MARK = '"\u0000vmas\u0000"';
  const [head, tail] = JSON.stringify({ ...r, vmas: MARK }, null, 2).split(JSON.stringify(MARK));
  if (r.vmas.length === 0) {
    yield `${head}[]${tail}`;
    return;
  }
  yield `${head}[\n`;
  for (let i = 0; i < r.vmas.length; i++) {
    const row = JSON.stringify(r.vmas[i], null, 2).replace(/^/gm, '    ');
    yield i + 1 < r.vmas.length ? `${row},\n` : `${row}\n`;
  }
  yield `  ]${tail}`;
}
