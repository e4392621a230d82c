/**
 * Structural checks of a task's memory layout against its pages file, shared by the writer (never
 * write what cannot be read back) and the reader (never hand a restore a pagemap that would make it
 * map pages from outside the file or outside a VMA).
 *
 * Rules: VMAs page-aligned, non-empty, ascending and non-overlapping; page runs page-aligned,
 * non-empty, ascending and non-overlapping, each inside one VMA whose kind has dumped pages
 * (anon, file-private, shmem); the runs' pages * 4096 equal the pages file's size exactly.
 * Inherited runs (DumpedTask.inherited, still shared with the parent, not in the pages file): the
 * same shape rules, each inside one anon or file-private VMA that the parent has too (same range,
 * same kind), none overlapping a dumped run, and only in a task that has a parent in the tree.
 */

import { PageRun, Vma } from '../native/lib/types';
import { ImageError } from './errors';
import { PAGE_SIZE } from './magic';
import { kindHasPages, kindMayInherit } from './vma-status';

export interface LayoutFiles {
  mm: string;
  pagemap: string;
  pages: string;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function aligned(n: number): boolean {
  return n % PAGE_SIZE === 0;
}

export function checkVmas(vmas: readonly Vma[], mmFile: string): void {
  let prevEnd = 0;
  vmas.forEach((v, i) => {
    const what = `VMA ${i} (${hex(v.start)}-${hex(v.end)}${v.name ? ' ' + v.name : ''})`;
    if (!aligned(v.start) || !aligned(v.end)) throw new ImageError('EBOUNDS', mmFile, `${what} is not page-aligned`);
    if (v.end <= v.start) throw new ImageError('EBOUNDS', mmFile, `${what} is empty or inverted`);
    if (v.start < prevEnd) throw new ImageError('EBOUNDS', mmFile, `${what} overlaps or precedes the VMA before it (which ends at ${hex(prevEnd)})`);
    prevEnd = v.end;
  });
}

/**
 * Shape of a list of runs: page-aligned, non-empty, ascending, non-overlapping, each inside one VMA
 * (already checked); calls `each` with the run, its VMA and its end. `label` names runs in messages.
 */
function walkRuns(
  vmas: readonly Vma[], runs: readonly PageRun[], file: string, mmFile: string, label: string,
  each: (r: PageRun, vma: Vma, end: number, what: string) => void,
): void {
  let prevEnd = 0;
  let vi = 0;
  runs.forEach((r, i) => {
    const what = `${label} ${i} (${hex(r.vaddr)}, ${r.nrPages} pages)`;
    if (!Number.isSafeInteger(r.nrPages) || r.nrPages < 1) throw new ImageError('EBOUNDS', file, `${what} has no pages`);
    if (!Number.isSafeInteger(r.vaddr) || !aligned(r.vaddr)) throw new ImageError('EBOUNDS', file, `${what} is not page-aligned`);
    const end = r.vaddr + r.nrPages * PAGE_SIZE;
    if (r.vaddr < prevEnd) throw new ImageError('EBOUNDS', file, `${what} overlaps or precedes the ${label} before it (which ends at ${hex(prevEnd)})`);
    prevEnd = end;
    while (vi < vmas.length && vmas[vi].end <= r.vaddr) vi++;
    const vma = vmas[vi];
    if (vma === undefined || vma.start > r.vaddr || end > vma.end) {
      throw new ImageError('EBOUNDS', file, `${what} is not inside one VMA of ${mmFile}`);
    }
    each(r, vma, end, what);
  });
}

/**
 * Checks the inherited runs of a task against its VMAs, its dumped runs (already checked) and its
 * parent's VMAs (null: the task has no parent in the tree).
 */
export function checkInheritedRuns(
  vmas: readonly Vma[], runs: readonly PageRun[], inherited: readonly PageRun[], parentVmas: readonly Vma[] | null, files: LayoutFiles,
): void {
  if (inherited.length === 0) return;
  const file = files.pagemap;
  if (parentVmas === null) {
    throw new ImageError('EBOUNDS', file, `has ${inherited.length} runs inherited from the parent task, but the task has no parent in the tree`);
  }
  let ri = 0;
  walkRuns(vmas, inherited, file, files.mm, 'inherited run', (r, vma, end, what) => {
    if (!kindMayInherit(vma.kind)) {
      throw new ImageError('EBOUNDS', file, `${what} lies in a ${vma.kind} VMA (${hex(vma.start)}-${hex(vma.end)}); only anon and file-private pages are shared copy-on-write with the parent`);
    }
    if (!parentVmas.some((p) => p.start === vma.start && p.end === vma.end && p.kind === vma.kind)) {
      throw new ImageError('EBOUNDS', file, `${what} lies in the ${vma.kind} VMA ${hex(vma.start)}-${hex(vma.end)}, which the parent task does not have`);
    }
    while (ri < runs.length && runs[ri].vaddr + runs[ri].nrPages * PAGE_SIZE <= r.vaddr) ri++;
    if (ri < runs.length && runs[ri].vaddr < end) {
      throw new ImageError('EBOUNDS', file, `${what} overlaps dumped run ${ri} (${hex(runs[ri].vaddr)}, ${runs[ri].nrPages} pages): a page is either in the pages file or inherited`);
    }
  });
}

/** Checks runs against VMAs (already checked) and the pages file size. */
export function checkPageRuns(vmas: readonly Vma[], runs: readonly PageRun[], pagesBytes: number, files: LayoutFiles): void {
  const file = files.pagemap;
  let fileOffset = 0;
  let prevEnd = 0;
  let vi = 0;
  runs.forEach((r, i) => {
    const what = `run ${i} (${hex(r.vaddr)}, ${r.nrPages} pages)`;
    if (!Number.isSafeInteger(r.nrPages) || r.nrPages < 1) throw new ImageError('EBOUNDS', file, `${what} has no pages`);
    if (!aligned(r.vaddr)) throw new ImageError('EBOUNDS', file, `${what} is not page-aligned`);
    const end = r.vaddr + r.nrPages * PAGE_SIZE;
    if (r.vaddr < prevEnd) throw new ImageError('EBOUNDS', file, `${what} overlaps or precedes the run before it (which ends at ${hex(prevEnd)})`);
    prevEnd = end;
    while (vi < vmas.length && vmas[vi].end <= r.vaddr) vi++;
    const vma = vmas[vi];
    if (vma === undefined || vma.start > r.vaddr || end > vma.end) {
      throw new ImageError('EBOUNDS', file, `${what} is not inside one VMA of ${files.mm}`);
    }
    if (!kindHasPages(vma.kind)) {
      throw new ImageError('EBOUNDS', file, `${what} lies in a ${vma.kind} VMA (${hex(vma.start)}-${hex(vma.end)}), which has no dumped pages`);
    }
    fileOffset += r.nrPages * PAGE_SIZE;
    if (fileOffset > pagesBytes) {
      throw new ImageError('EBOUNDS', file, `${what} points past the end of ${files.pages} (${pagesBytes} bytes)`);
    }
  });
  if (fileOffset !== pagesBytes) {
    throw new ImageError('EBOUNDS', file, `runs account for ${fileOffset} bytes but ${files.pages} has ${pagesBytes} bytes`);
  }
}
