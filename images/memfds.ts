/**
 * A memfd's contents in CRIU's layout (a memfd held as an fd: images/files/memfd.ts writes its
 * file_entry): memfd-inode.img has one memfd_inode_entry per memfd (name, size, seals, inode_id = the
 * file id, shmid = the file id too), and its bytes are shared memory pages, as CRIU keeps them:
 *
 *   memfd-inode.img            IMG_COMMON MEMFD_INODE  memfd_inode_entry ...
 *   pagemap-shmem-<shmid>.img  IMG_COMMON PAGEMAP      pagemap_head {pages_id P}, one pagemap_entry
 *                                                      {vaddr 0, nr_pages, PE_PRESENT} (vaddr: the
 *                                                      offset in the memfd)
 *   pages-<P>.img              raw, the contents padded to whole pages; P above every task's pages id
 *
 * `crit decode` reads the first two as it reads CRIU's (the pages file is raw, as every pages file). Each
 * memfd is at most MAX_MEMFD_BYTES; the pages files are read whole and checked against the manifest.
 */

import { ImageError } from './errors';
import { frameImage, unframeImage } from './codec';
import { MAX_MEMFD_BYTES } from './limits';
import { imageName, PAGE_SIZE, pagesFile } from './magic';
import { decodeEntry, encodeEntry, messages } from './proto';
import { u64FromNumber } from './u64';
import { PE_PRESENT } from './wire';

/** Memfds of one checkpoint (each has two image files). */
export const MAX_MEMFDS = 1024;

export interface EncodedMemfdImage {
  name: string;
  data: Buffer;
}

interface Memfd {
  id: number;
  name: string;
  seals: number;
  data: Buffer;
}

/** The writer's side: every memfd's inode entry, shmem pagemap and pages file. */
export class MemfdImages {
  private readonly memfds: Memfd[] = [];

  add(m: Memfd, what: string): void {
    if (m.data.length > MAX_MEMFD_BYTES) throw new ImageError('ETOOBIG', undefined, `${what}: memfd "${m.name}" holds ${m.data.length} bytes, over the cap of ${MAX_MEMFD_BYTES}`);
    if (this.memfds.length >= MAX_MEMFDS) throw new ImageError('ETOOBIG', undefined, `${what}: more than ${MAX_MEMFDS} memfds`);
    this.memfds.push(m);
  }

  /** The images; the pages files are numbered from `firstPagesIndex` (pagesFile's index: the task count). */
  encode(firstPagesIndex: number): EncodedMemfdImage[] {
    if (this.memfds.length === 0) return [];
    const msg = messages();
    const inodes = this.memfds.map((m) => encodeEntry(msg.memfdInode, {
      name: m.name, uid: 0, gid: 0, size: u64FromNumber(m.data.length, 'memfd size'), shmid: m.id, seals: m.seals >>> 0, inode_id: u64FromNumber(m.id, 'memfd inode_id'),
    }));
    const out: EncodedMemfdImage[] = [{ name: imageName.memfdInode(), data: frameImage('MEMFD_INODE', inodes) }];
    this.memfds.forEach((m, i) => {
      const pages = Math.ceil(m.data.length / PAGE_SIZE);
      const entries = [encodeEntry(msg.pagemapHead, { pages_id: firstPagesIndex + i + 1 })];
      if (pages > 0) entries.push(encodeEntry(msg.pagemapEntry, { vaddr: u64FromNumber(0, 'vaddr'), nr_pages: pages, flags: PE_PRESENT }));
      out.push({ name: imageName.shmemPagemap(m.id), data: frameImage('PAGEMAP', entries) });
      const raw = Buffer.alloc(pages * PAGE_SIZE);
      m.data.copy(raw);
      out.push({ name: pagesFile(firstPagesIndex + i), data: raw });
    });
    return out;
  }
}

interface MemfdInodeMsg {
  name: string;
  size: string | number;
  shmid: number;
  inode_id: string | number;
}

interface PagemapHeadMsg {
  pages_id: number;
}

interface PagemapEntryMsg {
  vaddr: string | number;
  nr_pages: number;
  flags?: number;
}

/** The pages files memfd-inode.img's memfds name (pages-<P>.img, P above the tasks'), to be allowed in the manifest. */
export interface MemfdPages {
  /** memfd inode_id (its file id in files.img) → its contents. */
  contents: Map<number, Buffer>;
  pagesFiles: Set<string>;
}

/**
 * memfd-inode.img, the shmem pagemap of each memfd and its pages file (`read` returns a verified file of
 * the manifest, `listed` whether the manifest lists it). `tasks` is the task count: a memfd's pages file
 * must not be a task's. Empty when the checkpoint has no memfd-inode.img (none, or an older image).
 */
export async function readMemfds(listed: (name: string) => boolean, read: (name: string) => Promise<Buffer>, tasks: number): Promise<MemfdPages> {
  const out: MemfdPages = { contents: new Map(), pagesFiles: new Set() };
  const inodeImg = imageName.memfdInode();
  if (!listed(inodeImg)) return out;
  const entries = unframeImage(inodeImg, 'MEMFD_INODE', await read(inodeImg));
  if (entries.length > MAX_MEMFDS) throw new ImageError('ETOOBIG', inodeImg, `${entries.length} memfds, over the cap of ${MAX_MEMFDS}`);
  for (const [i, bytes] of entries.entries()) {
    const e = decodeEntry<MemfdInodeMsg>(inodeImg, `entry ${i}`, messages().memfdInode, bytes);
    const what = `entry ${i} (memfd "${e.name}")`;
    const size = Number(e.size);
    const inode = Number(e.inode_id);
    if (!Number.isSafeInteger(size) || size > MAX_MEMFD_BYTES) throw new ImageError('ETOOBIG', inodeImg, `${what} holds ${e.size} bytes, over the cap of ${MAX_MEMFD_BYTES}`);
    if (out.contents.has(inode)) throw new ImageError('EDECODE', inodeImg, `${what}: inode_id ${inode} is listed twice`);
    const pagemapImg = imageName.shmemPagemap(e.shmid);
    if (!listed(pagemapImg)) throw new ImageError('EMISSING', pagemapImg, `${what} has shmid ${e.shmid}, but ${pagemapImg} is not listed in the manifest`);
    const runs = unframeImage(pagemapImg, 'PAGEMAP', await read(pagemapImg));
    if (runs.length === 0 || runs.length > 2) throw new ImageError('EDECODE', pagemapImg, `${runs.length} entries: a memfd's pagemap is its head and at most one run`);
    const head = decodeEntry<PagemapHeadMsg>(pagemapImg, 'pagemap_head', messages().pagemapHead, runs[0]);
    if (head.pages_id <= tasks) throw new ImageError('EDECODE', pagemapImg, `pages_id ${head.pages_id} is a task's pages file (the tree has ${tasks} tasks)`);
    const pages = Math.ceil(size / PAGE_SIZE);
    const run = runs.length === 2 ? decodeEntry<PagemapEntryMsg>(pagemapImg, 'run 0', messages().pagemapEntry, runs[1]) : undefined;
    if ((run === undefined ? 0 : run.nr_pages) !== pages || (run !== undefined && (Number(run.vaddr) !== 0 || ((run.flags ?? 0) & PE_PRESENT) === 0))) {
      throw new ImageError('EDECODE', pagemapImg, `${what}: ${size} bytes need one present run of ${pages} pages from offset 0`);
    }
    const name = pagesFile(head.pages_id - 1);
    if (out.pagesFiles.has(name)) throw new ImageError('EDECODE', pagemapImg, `${name} is the pages file of another memfd too`);
    if (!listed(name)) throw new ImageError('EMISSING', name, `${what}'s pages (${pagemapImg}) are not listed in the manifest`);
    const raw = await read(name);
    if (raw.length !== pages * PAGE_SIZE) throw new ImageError('ETRUNC', name, `${raw.length} bytes, but ${what} has ${pages} pages`);
    out.pagesFiles.add(name);
    out.contents.set(inode, Buffer.from(raw.subarray(0, size)));
  }
  return out;
}
