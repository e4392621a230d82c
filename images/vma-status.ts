/**
 * VmaKind <-> CRIU's vma_entry.status bits (criu/include/image.h; values are image ABI).
 * CRIU marks every VMA it restores VMA_AREA_REGULAR; [vsyscall] is the kernel's and is not.
 *
 * 'shmem' (MAP_SHARED anonymous memory and memfds) is VMA_AREA_REGULAR | VMA_ANON_SHARED, shmid the
 * object's id, for both. CRIU writes a memfd mapping as VMA_AREA_MEMFD with shmid naming a MEMFD
 * file_entry and the pages in a pagemap of its own; crit 3.17 does not know that bit (it prints 0x4000)
 * and Cryopod keeps memfd pages in the task's pagemap like any shmem object, so a memfd is written as
 * VMA_ANON_SHARED too and told apart by cryopod_shm_path ("/memfd:<name>" or "/dev/zero"). Images
 * with VMA_AREA_MEMFD (from CRIU) are refused. 'anon' is private anonymous memory only.
 */

import { VmaKind } from '../native/lib/types';
import { ImageError } from './errors';

export const VMA_AREA_REGULAR = 1 << 0;
export const VMA_AREA_STACK = 1 << 1;
export const VMA_AREA_VSYSCALL = 1 << 2;
export const VMA_AREA_VDSO = 1 << 3;
export const VMA_AREA_HEAP = 1 << 5;
export const VMA_FILE_PRIVATE = 1 << 6;
export const VMA_FILE_SHARED = 1 << 7;
export const VMA_ANON_SHARED = 1 << 8;
export const VMA_ANON_PRIVATE = 1 << 9;
export const VMA_AREA_SYSVIPC = 1 << 10;
export const VMA_AREA_SOCKET = 1 << 11;
export const VMA_AREA_VVAR = 1 << 12;
export const VMA_AREA_AIORING = 1 << 13;
export const VMA_AREA_MEMFD = 1 << 14;
export const VMA_UNSUPP = 1 << 31;

export const MAP_SHARED = 0x01;

/** Kinds whose pages the dumper writes into the pages image; the others never have page runs. */
export function kindHasPages(kind: VmaKind): boolean {
  return kind === 'anon' || kind === 'file-private' || kind === 'shmem';
}

/** Kinds whose pages a child may still share copy-on-write with its parent (DumpedTask.inherited). */
export function kindMayInherit(kind: VmaKind): boolean {
  return kind === 'anon' || kind === 'file-private';
}

export function isFileKind(kind: VmaKind): boolean {
  return kind === 'file-private' || kind === 'file-shared';
}

export function statusOf(kind: VmaKind, mapFlags: number, name: string): number {
  switch (kind) {
    case 'anon': {
      if ((mapFlags & MAP_SHARED) !== 0) {
        throw new ImageError('EINVAL', undefined, `an anon VMA (${name || 'anonymous'}) has MAP_SHARED: shared anonymous memory is of kind shmem`);
      }
      let s = VMA_AREA_REGULAR | VMA_ANON_PRIVATE;
      // CRIU sets these from the /proc/PID/maps name as well; they are informative only.
      if (name === '[heap]') s |= VMA_AREA_HEAP;
      if (name === '[stack]') s |= VMA_AREA_STACK;
      return s;
    }
    case 'file-private':
      return VMA_AREA_REGULAR | VMA_FILE_PRIVATE;
    case 'file-shared':
      return VMA_AREA_REGULAR | VMA_FILE_SHARED;
    case 'vdso':
      return VMA_AREA_REGULAR | VMA_AREA_VDSO;
    case 'vvar':
      return VMA_AREA_REGULAR | VMA_AREA_VVAR;
    case 'vsyscall':
      return VMA_AREA_VSYSCALL;
    case 'shmem':
      return VMA_AREA_REGULAR | VMA_ANON_SHARED;
  }
}

const UNSUPPORTED: ReadonlyArray<[number, string]> = [
  [VMA_AREA_SYSVIPC, 'SysV IPC shared memory'],
  [VMA_AREA_SOCKET, 'a packet socket ring'],
  [VMA_AREA_AIORING, 'an AIO ring'],
  [VMA_AREA_MEMFD, "a memfd as CRIU writes it (VMA_AREA_MEMFD; Cryopod writes memfds as VMA_ANON_SHARED)"],
  [VMA_UNSUPP, 'unsupported'],
];

/** The kind a status describes, or a reason why Cryopod cannot restore it. */
export function kindOfStatus(status: number): VmaKind | { unsupported: string } {
  for (const [bit, what] of UNSUPPORTED) if ((status & bit) !== 0) return { unsupported: what };
  if ((status & VMA_AREA_VSYSCALL) !== 0) return 'vsyscall';
  if ((status & VMA_AREA_VDSO) !== 0) return 'vdso';
  if ((status & VMA_AREA_VVAR) !== 0) return 'vvar';
  if ((status & VMA_FILE_PRIVATE) !== 0) return 'file-private';
  if ((status & VMA_FILE_SHARED) !== 0) return 'file-shared';
  if ((status & VMA_ANON_SHARED) !== 0) return 'shmem';
  if ((status & VMA_ANON_PRIVATE) !== 0) return 'anon';
  return { unsupported: 'no known kind bit' };
}
