/**
 * readCheckpoint: the hardened reader. In order, and stopping at the first problem:
 *   1. the manifest: present (EMISSING), sane, a version we read (EVERSION);
 *   2. every listed file: present, regular, of the listed size and sha256 (ECHECKSUM);
 *   3. pstree.img: the tree's shape (tree.ts: root first, parents before children, unique pids and
 *      tids, sessions and groups a restore can rebuild; EDECODE, ETOOBIG over the caps), the root the
 *      task the manifest names; then every per-task file in the manifest (EMISSING): core-<tid>.img of
 *      every thread (and no other core image: EDECODE), ids, mm, pagemap, fs, fdinfo-<files_id>.img
 *      and pages-<i+1>.img of task i (and no other pages file);
 *   4. each image, from the very bytes that were hashed: magics (EMAGIC), entry framing (ETRUNC),
 *      caps (ETOOBIG), protobuf and values (EDECODE), CRIU image version (EVERSION); each task its
 *      own fd table and mm (files_id, vm_id not shared);
 *   5. the layout: VMAs and page runs against each other and each pages file's size, inherited runs
 *      against the parent's VMAs, shmem objects across the tree (EBOUNDS, EDECODE);
 *   6. pipes: every pipe fd refers to a PIPE entry of files.img whose pipe_entry agrees with it, every
 *      pipes-data.img entry is of a pipe some fd holds, once, at most MAX_PIPE_BYTES (ETOOBIG).
 * Only then is the tree handed out, with the paths of the pages files it may map pages from.
 *
 * With `deferPagesHash`, step 2 checks the pages files' sizes but not their sha256: the result then
 * carries each one's manifest digest (`pagesDigests`), and the caller must have them verified before the
 * restored task runs (checkpoint/restore.ts passes them to the native fill, which hashes each image in the same
 * pass that writes it into the stopped stub and kills the stub on a mismatch).
 */

import * as path from 'path';
import { DumpedTask, DumpedTree, ThreadState } from '../native/lib/types';
import {
  decodeCore, decodeSeccomp, decodeThreadCore, decodeFdinfo, decodeFiles, decodeFs, decodeIds, decodeInventory, decodeMm, decodePagemap, decodePipesData,
  decodePstree, DecodedFiles, fdinfoFileIds, fileById,
} from './decode';
import { EntryBudget } from './entry-budget';
import { ImageError } from './errors';
import { readGhosts } from './ghosts';
import { MemfdPages, readMemfds } from './memfds';
import { checkInheritedRuns, checkPageRuns, checkVmas } from './layout';
import { MAX_ENTRIES, MAX_FDS, MAX_VMAS } from './limits';
import { imageName, pagesFile } from './magic';
import { Manifest, ManifestFile, readVerified, verifyManifest } from './manifest';
import { checkPstree, checkShmem, parentIndexes, readerFail } from './tree';
import { PstreeMsg } from './wire';
import { markShared } from './shared-files';

const CORE_NAME = /^core-.*\.img$/;
const PAGES_NAME = /^pages-.*\.img$/;

/**
 * The core images the manifest lists must be exactly one per thread of pstree.img: a thread without
 * its core is EMISSING, a core of no listed thread (a thread list that does not match) EDECODE.
 */
function checkThreadCores(manifest: Manifest, tasks: ReadonlyArray<{ pid: number; otherTids: readonly number[] }>): void {
  const expected = new Set<string>();
  const listed = new Set(manifest.files.map((f) => f.name).filter((n) => CORE_NAME.test(n)));
  for (const { pid, otherTids } of tasks) {
    for (const tid of [pid, ...otherTids]) {
      const name = imageName.core(tid);
      expected.add(name);
      if (!listed.has(name)) throw new ImageError('EMISSING', name, `thread ${tid} of task ${pid} in ${imageName.pstree()} has no core image in the manifest`);
    }
  }
  const of = tasks.length === 1 ? `task ${tasks[0].pid}` : 'any task';
  for (const name of listed) {
    if (!expected.has(name)) throw new ImageError('EDECODE', name, `is listed in the manifest but is not the core of a thread of ${of} in ${imageName.pstree()}`);
  }
}

/** The per-task images and pages files must all be listed, and no pages file of no task. */
function checkTaskFiles(manifest: Manifest, pids: readonly number[], memfdPages: ReadonlySet<string>): void {
  const listed = new Set(manifest.files.map((f) => f.name));
  pids.forEach((pid, i) => {
    for (const name of [imageName.ids(pid), imageName.mm(pid), imageName.pagemap(pid), imageName.fs(pid), pagesFile(i)]) {
      if (!listed.has(name)) throw new ImageError('EMISSING', name, `task ${pid} (entry ${i} of ${imageName.pstree()}) has no ${name} in the manifest`);
    }
  });
  const pages = new Set(pids.map((_, i) => pagesFile(i)));
  for (const name of listed) {
    if (PAGES_NAME.test(name) && !pages.has(name) && !memfdPages.has(name)) {
      throw new ImageError('EDECODE', name, `is listed in the manifest but ${imageName.pstree()} has ${pids.length} task(s), whose pages are pages-1.img to ${pagesFile(pids.length - 1)}`);
    }
  }
}

/** memfd-inode.img's contents, each to the memfd entry of files.img whose id is its inode_id (one each). */
function giveMemfdContents(files: DecodedFiles, memfds: MemfdPages, file: string): void {
  if (memfds.contents.size === 0) return;
  for (const [id, k] of files.kinds) {
    if (k.file.kind !== 'memfd') continue;
    const data = memfds.contents.get(id);
    if (data === undefined) throw new ImageError('EDECODE', file, `the memfd of file id ${id} has no inode entry`);
    if ((k.file.state?.data?.length ?? 0) > 0) throw new ImageError('EDECODE', file, `the memfd of file id ${id} has its contents in files.img already`);
    k.file.state = { ...(k.file.state ?? { num: {}, text: {} }), data };
    k.file.size = data.length;
  }
  for (const id of memfds.contents.keys()) {
    if (files.kinds.get(id)?.file.kind !== 'memfd') throw new ImageError('EDECODE', file, `inode_id ${id} is not a memfd of files.img`);
  }
}

/** fifo-data.img's bytes, each to the first fd (tree order) of the FIFO whose pipe_id it names. */
function giveFifoBytes(tasks: DumpedTask[], entries: Array<{ id: number; data: Buffer }>, file: string): void {
  for (const [i, e] of entries.entries()) {
    const fifo = tasks.flatMap((t) => t.files).find((f) => f.kind === 'fifo' && Number(BigInt(f.state?.num.ino ?? 0) & 0xffff_ffffn) === e.id);
    if (fifo === undefined) throw new ImageError('EDECODE', file, `entry ${i} holds the bytes of FIFO ${e.id}, which no fd of the tree holds`);
    if (fifo.state!.data !== undefined && fifo.state!.data.length > 0) throw new ImageError('EDECODE', file, `entry ${i}: FIFO ${e.id} has its bytes in files.img already`);
    fifo.state!.data = e.data;
  }
}

export interface ReadResult {
  tree: DumpedTree;
  /** The pages file of each task, in tree order. */
  pagesPaths: string[];
  /** The root task (tree.tasks[0]), for single-task callers. */
  task: DumpedTask;
  /** Its pages file (pagesPaths[0]). */
  pagesPath: string;
  manifest: Manifest;
  /**
   * With `deferPagesHash`: the manifest's digest of each task's pages file, in tree order, NOT yet
   * verified (the caller's duty). Absent otherwise: every file was verified here.
   */
  pagesDigests?: PagesDigest[];
}

/** A pages file's digest as the manifest lists it (sha256, or blake3 since v3), for a verifier elsewhere (the native fill). */
export interface PagesDigest {
  sha256?: string;
  blake3?: string;
  chunkBytes?: number;
  /** Version 4: every chunk's BLAKE3 (hex, in order), for a lazy restore to verify chunks one by one. */
  chunkBlake3?: string;
}

export async function readCheckpoint(dir: string, opts: { deferPagesHash?: boolean } = {}): Promise<ReadResult> {
  const deferHash = opts.deferPagesHash === true ? (name: string): boolean => PAGES_NAME.test(name) : undefined;
  const manifest = await verifyManifest(dir, { deferHash });
  const budget = new EntryBudget();
  const read = async (name: string): Promise<Buffer> => {
    const buf = await readVerified(dir, manifest, name);
    budget.take(name, buf);
    return buf;
  };

  decodeInventory(imageName.inventory(), await read(imageName.inventory()));
  const entries = decodePstree(imageName.pstree(), await read(imageName.pstree()));
  const root = entries[0].ps;
  if (root.pid !== manifest.pid) {
    throw new ImageError('EDECODE', imageName.pstree(), `task ${root.pid} is not the task ${manifest.pid} the manifest names`);
  }
  const ppidOf = (ps: PstreeMsg, i: number): number => (i === 0 ? ps.cryopod_ppid ?? ps.ppid : ps.ppid);
  checkPstree(entries.map(({ ps, otherTids }, i) => ({ pid: ps.pid, ppid: i === 0 ? 0 : ps.ppid, pgid: ps.pgid, sid: ps.sid, tids: [ps.pid, ...otherTids] })), readerFail);
  checkThreadCores(manifest, entries.map(({ ps, otherTids }) => ({ pid: ps.pid, otherTids })));
  const listed = (name: string): boolean => manifest.files.some((f) => f.name === name);
  const memfds = await readMemfds(listed, read, entries.length);
  checkTaskFiles(manifest, entries.map(({ ps }) => ps.pid), memfds.pagesFiles);

  const seccompImg = imageName.seccomp();
  const seccomp = manifest.files.some((f) => f.name === seccompImg) ? decodeSeccomp(seccompImg, await read(seccompImg)) : undefined;
  const filesImg = imageName.files();
  // One entry per fd, plus exe, cwd, root and one per file-backed VMA, for each task.
  const files = decodeFiles(filesImg, await read(filesImg), Math.min(MAX_ENTRIES, entries.length * (MAX_FDS + MAX_VMAS + 3)));
  files.ghosts = await readGhosts(listed, read);
  giveMemfdContents(files, memfds, imageName.memfdInode());
  for (const id of files.ghosts.keys()) fileById(files, id, filesImg, imageName.remapFpath(), `remapped file id ${id}`);
  const filesIds = new Map<number, number>();
  const vmIds = new Map<number, number>();
  const tasks: DumpedTask[] = [];
  const fileIds: number[][] = [];  // per task, the file id of each fd: shared descriptions
  for (let i = 0; i < entries.length; i++) {
    const { ps, otherTids } = entries[i];
    const pid = ps.pid;
    const idsImg = imageName.ids(pid);
    const ids = decodeIds(idsImg, await read(idsImg));
    const sharedFiles = filesIds.get(ids.files_id);
    if (sharedFiles !== undefined) throw new ImageError('EDECODE', idsImg, `task ${pid} shares its fd table (files_id ${ids.files_id}) with task ${sharedFiles}; Cryopod restores one fd table per task`);
    filesIds.set(ids.files_id, pid);
    const sharedVm = vmIds.get(ids.vm_id);
    if (sharedVm !== undefined) throw new ImageError('EDECODE', idsImg, `task ${pid} shares its memory (vm_id ${ids.vm_id}) with task ${sharedVm}; Cryopod restores one mm per task`);
    vmIds.set(ids.vm_id, pid);
    const fdinfoImg = imageName.fdinfo(ids.files_id);
    if (!manifest.files.some((f) => f.name === fdinfoImg)) {
      throw new ImageError('EMISSING', fdinfoImg, `task ${pid} has files_id ${ids.files_id} in ${idsImg} but ${fdinfoImg} is not listed in the manifest`);
    }
    const core = decodeCore(imageName.core(pid), await read(imageName.core(pid)), seccomp);
    const threads: ThreadState[] = [];
    for (const tid of otherTids) threads.push(decodeThreadCore(imageName.core(tid), await read(imageName.core(tid)), tid, core.creds));
    const bare = threads.find((t) => core.processState !== undefined && t.threadState === undefined);
    if (bare) throw new ImageError('EDECODE', imageName.core(bare.tid), `thread ${bare.tid} lacks the state its task's core-${pid}.img says was saved`);
    const mmImg = imageName.mm(pid);
    const { mm, vmas, exeId } = decodeMm(mmImg, await read(mmImg), files, filesImg);
    const pagemapImg = imageName.pagemap(pid);
    const { pages, inherited } = decodePagemap(pagemapImg, await read(pagemapImg), i + 1);
    const fsImg = imageName.fs(pid);
    const fs = decodeFs(fsImg, await read(fsImg));
    const fdinfoBytes = await read(fdinfoImg);
    const openFiles = decodeFdinfo(fdinfoImg, fdinfoBytes, files, filesImg);
    fileIds.push(fdinfoFileIds(fdinfoImg, fdinfoBytes));

    const pagesEntry = manifest.files.find((f) => f.name === pagesFile(i));
    if (pagesEntry === undefined) throw new ImageError('EMISSING', pagesFile(i), 'is not listed in the manifest');
    const names = { mm: mmImg, pagemap: pagemapImg, pages: pagesFile(i) };
    checkVmas(vmas, mmImg);
    checkPageRuns(vmas, pages, pagesEntry.size, names);
    // Parents come before their children (checkPstree), so the parent's VMAs are known here.
    const parent = i === 0 ? undefined : tasks.find((t) => t.pid === ps.ppid);
    checkInheritedRuns(vmas, pages, inherited, parent === undefined ? null : parent.vmas, names);

    const task: DumpedTask = {
      pid,
      ppid: ppidOf(ps, i),
      pgid: ps.pgid,
      sid: ps.sid,
      ...(ps.cryopod_pid_ns === true ? { ownPidNamespace: true } : {}),
      comm: core.comm,
      exe: fileById(files, exeId, filesImg, mmImg, 'exe_file_id').name,
      cwd: fileById(files, fs.cwd_id, filesImg, fsImg, 'cwd_id').name,
      root: fileById(files, fs.root_id, filesImg, fsImg, 'root_id').name,
      umask: fs.umask ?? 0o022,
      personality: core.personality,
      creds: core.creds,
      ...(core.processState ? { processState: core.processState, threadState: core.threadState } : {}),
      regs: core.regs,
      xsave: core.xsave,
      sigmask: core.sigmask,
      sigactions: core.sigactions,
      altstack: core.altstack,
      rseq: core.rseq,
      robustList: core.robustList,
      clearChildTid: core.clearChildTid,
      mm,
      vmas,
      pages,
      threads,
      files: openFiles,
      frozenSeconds: manifest.frozenSeconds,
    };
    // Only a task that shares pages with its parent has the field (the native core may give [] too).
    if (inherited.length > 0) task.inherited = inherited;
    tasks.push(task);
  }
  if (tasks.some((t) => t.ownPidNamespace !== tasks[0].ownPidNamespace)) {
    throw new ImageError('EDECODE', imageName.pstree(), 'some tasks have IDs of their own PID namespace (cryopod_pid_ns) and others not');
  }
  markShared(tasks, fileIds);
  const parents = parentIndexes(tasks);
  checkShmem(tasks, (i) => parents[i], readerFail);

  const pipesImg = imageName.pipesData();
  const pipes = manifest.files.some((f) => f.name === pipesImg) ? decodePipesData(pipesImg, await read(pipesImg)) : [];
  const held = new Set<number>();
  for (const t of tasks) for (const f of t.files) if (f.pipe !== undefined) held.add(f.pipe.id);
  pipes.forEach((p, i) => {
    if (!held.has(p.id)) throw new ImageError('EDECODE', pipesImg, `entry ${i} holds data of pipe ${p.id}, which no fd of the tree holds`);
  });

  const fifoImg = imageName.fifoData();
  if (manifest.files.some((f) => f.name === fifoImg)) giveFifoBytes(tasks, decodePipesData(fifoImg, await read(fifoImg), 'FIFO_DATA'), fifoImg);

  const tree: DumpedTree = { tasks, pipes, frozenSeconds: manifest.frozenSeconds };
  const pagesPaths = tasks.map((_, i) => path.join(dir, pagesFile(i)));
  const result: ReadResult = { tree, pagesPaths, task: tasks[0], pagesPath: pagesPaths[0], manifest };
  if (deferHash !== undefined) {
    result.pagesDigests = tasks.map((_, i) => {
      // Listed: checkTaskFiles saw to it.
      const entry = manifest.files.find((f) => f.name === pagesFile(i)) as ManifestFile;
      const digest = entry.blake3 !== undefined ? { blake3: entry.blake3 } : { sha256: entry.sha256 as string };
      if (entry.chunkBytes === undefined) return digest;
      return { ...digest, chunkBytes: entry.chunkBytes, ...(entry.chunkBlake3 !== undefined ? { chunkBlake3: entry.chunkBlake3 } : {}) };
    });
  }
  return result;
}
