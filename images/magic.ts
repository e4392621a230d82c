/**
 * CRIU's image magics (criu/include/magic.h, as pycriu/images/magic.py lists them for CRIU 3.17) and
 * the file names of a checkpoint directory.
 *
 * Since CRIU's image version 1.1 every image starts with two u32 magics: IMG_SERVICE for
 * inventory.img (and other service images), IMG_COMMON for the rest, then the magic of the image type.
 */

export const IMG_COMMON = 0x54564319;
export const IMG_SERVICE = 0x55105940;

export const MAGIC = {
  INVENTORY: 0x58313116,
  PSTREE: 0x50273030,
  CORE: 0x55053847,
  IDS: 0x54432030,
  MM: 0x57492820,
  PAGEMAP: 0x56084025,
  FILES: 0x56303138,
  FDINFO: 0x56213732,
  FS: 0x51403912,
  PIPES_DATA: 0x56453709,
  FIFO_DATA: 0x59333054,
  REMAP_FPATH: 0x59133954,
  GHOST_FILE: 0x52583605,
  MEMFD_INODE: 0x48453499,
  SECCOMP: 0x64413049,
} as const;

export type ImageKind = keyof typeof MAGIC;

/** inventory_entry.img_version for CRTOOLS_IMAGES_V1_1, the only version CRIU has written since 2015. */
export const CRIU_IMAGES_VERSION = 2;

/**
 * pagemap_head.pages_id of task i (tree order) is i + 1: the native core writes task i's pages into
 * pages-<i+1>.img. A single task's are in pages-1.img.
 */
export const PAGES_ID = 1;
export const PAGES_FILE = `pages-${PAGES_ID}.img`;
export function pagesFile(index: number): string {
  return `pages-${index + 1}.img`;
}
export const MANIFEST_FILE = 'cryopod-manifest.json';
export const PAGE_SIZE = 4096;

/**
 * Task i (tree order) has its own fd table, mm and fs: every id of its task_kobj_ids_entry is i + 1, so
 * its fds are in fdinfo-<i+1>.img (fdinfo-1.img for a single task).
 */
export const FILES_ID = 1;

export function firstMagicOf(kind: ImageKind): number {
  return kind === 'INVENTORY' ? IMG_SERVICE : IMG_COMMON;
}

export const imageName = {
  inventory: (): string => 'inventory.img',
  pstree: (): string => 'pstree.img',
  core: (pid: number): string => `core-${pid}.img`,
  ids: (pid: number): string => `ids-${pid}.img`,
  mm: (pid: number): string => `mm-${pid}.img`,
  pagemap: (pid: number): string => `pagemap-${pid}.img`,
  files: (): string => 'files.img',
  fdinfo: (filesId: number): string => `fdinfo-${filesId}.img`,
  fs: (pid: number): string => `fs-${pid}.img`,
  pipesData: (): string => 'pipes-data.img',
  fifoData: (): string => 'fifo-data.img',
  remapFpath: (): string => 'remap-fpath.img',
  ghostFile: (id: number): string => `ghost-file-${id}.img`,
  memfdInode: (): string => 'memfd-inode.img',
  shmemPagemap: (shmid: number): string => `pagemap-shmem-${shmid}.img`,
  seccomp: (): string => 'seccomp.img',
};
