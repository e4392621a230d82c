/**
 * Structural checks of a task's memory layout against its pages file, shared by the writer (never
 * write what cannot be read back) and the reader (never hand a restore a pagemap that would make it
 * map pages from outside the file or outside a VMA).
 *
 * Rules: VMAs page-aligned, non-empty, ascending and non-overlapping; page runs page-aligned,
 * non-empty, ascending and non-overlapping, each inside one VMA whose kind has dumped pages
 * (anon, file-private); the runs' pages * 4096 equal the pages file's size exactly.
 */

import { PageRun, Vma } from '../native/lib/types';
import { ImageError } from './errors';
import { PAGE_SIZE } from './magic';
import { kindHasPages } from './vma-status';

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
