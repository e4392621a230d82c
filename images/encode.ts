/**
 * DumpedTree (or a single DumpedTask) -> CRIU image files, in memory (no I/O here; write.ts puts them
 * on disk).
 *
 * Tasks: pstree.img has one entry per task, in tree order (root first, each parent before its
 * children). Task i has its own core/ids/mm/pagemap/fs images named by its pid, every id of its
 * task_kobj_ids_entry i + 1 (its fds in fdinfo-<i+1>.img), and pagemap_head.pages_id i + 1 (its pages
 * in pages-<i+1>.img). A single task is a tree of one, written exactly as before trees existed.
 *
 * Threads: the main thread's core-<pid>.img carries the task-wide state (tc, ids, creds, comm) and
 * its own registers; every other thread has a core-<tid>.img with registers and thread_core only,
 * in DumpedTask.threads order (ascending tid), right after the main one.
 *
 * files.img is shared by the tree: file_entry ids are numbered from 1 across all tasks, task by task,
 * each in this order: fds (in DumpedTask order), exe, cwd, root, then one per file-backed VMA (in VMA
 * order). An fd of kind 'socket' is a file_entry of type INETSK carrying an inet_sk_entry (socket.ts),
 * one of kind 'pipe' a file_entry of type PIPE carrying a pipe_entry (cryopod_external for a pipe held
 * outside the tree too), one of a kind of images/files/ (eventfd, ...) a file_entry of that kind's type
 * carrying its message, every other fd a REG entry.
 *
 * Page runs: DumpedTask.pages are PE_PRESENT entries, DumpedTask.inherited PE_PARENT entries with
 * cryopod_inherited set; both go into pagemap-<pid>.img merged by address, as CRIU orders them.
 * pipes-data.img (only when the tree has pipes): one pipe_data_entry per DumpedTree.pipes entry, in
 * order, each followed by its bytes.
 * fifo-data.img (only when a FIFO held bytes): the same, per FIFO, keyed by its pipe_id.
 * memfd-inode.img, pagemap-shmem-<id>.img and pages-<tasks+k>.img (only with memfds, memfds.ts): each
 * memfd's name, seals and contents as CRIU keeps them.
 * remap-fpath.img and ghost-file-<id>.img (only with deleted files, ghosts.ts): the contents of every
 * deleted file held open (kind 'ghost') or mapped (Vma.ghost), its files.img entry remapped to its ghost.
 */

import { DumpedTask, DumpedTree, OpenFile, Vma } from '../native/lib/types';
import { frameImage } from './codec';
import { ImageError } from './errors';
import { MAX_AUXV_WORDS, MAX_PIPE_BYTES } from './limits';
import { CRIU_IMAGES_VERSION, ImageKind, IMG_COMMON, MAGIC, PAGE_SIZE, imageName } from './magic';
import { encodeEntry, messages, U64 } from './proto';
import { requireSafe, s64FromNumber, u64FromBigInt, u64FromNumber } from './u64';
import { isFileKind, statusOf, MAP_SHARED } from './vma-status';
import {
  FD_CLOEXEC, FD_TYPE_INETSK, FD_TYPE_PIPE, FD_TYPE_REG, FILE_KIND, O_ACCMODE, O_DIRECTORY, O_RDONLY, O_RDWR, O_WRONLY,
  PE_PARENT, PE_PRESENT, PROT_WRITE, S_IFIFO, S_IFMT,
} from './wire';
import { encodeInetSk } from './socket';
import { ImageFileKind } from './files/kind';
import { ghostContents } from './files/ghost';
import { GhostImages } from './ghosts';
import { MemfdImages } from './memfds';
import { encodeLocks } from './files/locks';
import { imageKindNamed } from './files/registry';
import { SeccompTable } from './process-state';
import { checkThreads, encodeCore, encodeThreadCoreImage, u32 } from './encode-core';
import { SharedEntries } from './shared-files';

export interface EncodedImage {
  name: string;
  data: Buffer;
}

const ZERO_FOWN = { uid: 0, euid: 0, signum: 0, pid_type: 0, pid: 0 };

/** Collects file_entry records and hands out their ids. */
class FileTable {
  readonly entries: Uint8Array[] = [];
  /** Deleted files (fds and mappings): remap-fpath.img and ghost-file-<id>.img. */
  readonly ghosts = new GhostImages();
  /** Memfds held as fds: memfd-inode.img, their shmem pagemaps and pages (memfds.ts). */
  readonly memfds = new MemfdImages();
  /** Descriptions held by several fds: written once, referred to by each (shared-files.ts). */
  readonly shared = new SharedEntries();
  private nextId = 1;

  add(reg: { flags: number; pos?: U64; name: string; size?: U64; mode?: number; cryopod_kind?: number; cryopod_locks?: object[]; cryopod_contents?: Buffer }): number {
    const id = this.nextId++;
    const entry = {
      type: FD_TYPE_REG,
      id,
      reg: { id, pos: u64FromNumber(0, 'pos'), fown: ZERO_FOWN, ...reg },
    };
    this.entries.push(encodeEntry(messages().file, entry));
    return id;
  }

  /** A PIPE entry; `pipe` makes the pipe_entry for the id handed out. */
  addPipe(pipe: (id: number) => object): number {
    const id = this.nextId;
    this.entries.push(encodeEntry(messages().file, { type: FD_TYPE_PIPE, id, pipe: pipe(id) }));
    this.nextId++;
    return id;
  }

  /** An entry of a kind of images/files/: `make` makes its message for the id handed out. */
  addKind(kind: ImageFileKind, make: (id: number) => object): number {
    const id = this.nextId;
    this.entries.push(encodeEntry(messages().file, { type: kind.fdType, id, [kind.field]: make(id) }));
    this.nextId++;
    return id;
  }

  /** An INETSK entry; `isk` makes the inet_sk_entry for the id handed out. */
  addSocket(isk: (id: number) => object): number {
    const id = this.nextId;
    const entry = { type: FD_TYPE_INETSK, id, isk: isk(id) };
    this.entries.push(encodeEntry(messages().file, entry));
    this.nextId++;
    return id;
  }
}

function encodeOpenFile(f: OpenFile, i: number, table: FileTable): object {
  const what = `files[${i}] (fd ${f.fd})`;
  const fd = u32(f.fd, `${what}.fd`);
  const cloexec = f.cloexec ? FD_CLOEXEC : 0;
  if (f.shareId !== undefined && (!Number.isSafeInteger(f.shareId) || f.shareId < 1)) throw new ImageError('EINVAL', undefined, `${what}.shareId ${f.shareId} is not a positive integer`);
  const earlier = table.shared.earlier(f.shareId, f.kind, what);
  if (earlier !== undefined) return { id: earlier.id, flags: cloexec, type: earlier.type, fd };
  const entry = encodeOwnFile(f, what, table);
  table.shared.remember(f.shareId, f.kind, entry);
  return { ...entry, flags: cloexec, fd };
}

/** The file_entry of an fd that is the first (or only) holder of its open file: its fdinfo id and type. */
function encodeOwnFile(f: OpenFile, what: string, table: FileTable): { id: number; type: number } {
  if (f.kind === 'socket') {
    const id = table.addSocket((fileId) => encodeInetSk(f, fileId, what));
    return { id, type: FD_TYPE_INETSK };
  }
  if (f.socket !== undefined) throw new ImageError('EINVAL', undefined, `${what} is of kind ${f.kind} but has a socket description`);
  if (f.kind === 'pipe') {
    const id = table.addPipe((fileId) => encodePipe(f, fileId, what));
    return { id, type: FD_TYPE_PIPE };
  }
  if (f.pipe !== undefined) throw new ImageError('EINVAL', undefined, `${what} is of kind ${f.kind} but has a pipe description`);
  const imageKind = imageKindNamed(f.kind);
  if (imageKind !== undefined) {
    const id = table.addKind(imageKind, (fileId) => imageKind.encode(f, fileId, what));
    if (f.kind === 'memfd') table.memfds.add({ id, name: String(f.state?.text.name), seals: Number(f.state?.num.seals ?? 0), data: f.state?.data ?? Buffer.alloc(0) }, what);
    return { id, type: imageKind.fdType };
  }
  // Kinds the contract has but these images do not hold (yet) are refused rather than written as REG.
  const kind = (FILE_KIND as Record<string, number | undefined>)[f.kind];
  if (kind === undefined) throw new ImageError('EINVAL', undefined, `${what} is of kind ${JSON.stringify(f.kind)}, which the images cannot hold`);
  const id = table.add({
    flags: u32(f.flags, `${what}.flags`),
    pos: u64FromNumber(f.pos, `${what}.pos`),
    name: f.path,
    size: u64FromNumber(f.size, `${what}.size`),
    mode: u32(f.mode, `${what}.mode`),
    cryopod_kind: kind,
    cryopod_locks: encodeLocks(f, what),
  });
  if (f.kind === 'ghost') table.ghosts.add(id, { mode: u32(f.mode, `${what}.mode`), data: ghostContents(f, what) }, what);
  return { id, type: FD_TYPE_REG };
}

/**
 * The pipe_entry of an OpenFile of kind 'pipe': path "pipe:[<id>]", no position or size, an S_IFIFO
 * mode, and an access mode that says which end (O_RDONLY read, O_WRONLY write) as `pipe.write` does.
 */
function encodePipe(f: OpenFile, fileId: number, what: string): object {
  const p = f.pipe;
  if (p === undefined) throw new ImageError('EINVAL', undefined, `${what} is a pipe but has no pipe description`);
  const pipeId = u32(p.id, `${what}.pipe.id`);
  if (pipeId === 0) throw new ImageError('EINVAL', undefined, `${what}.pipe.id is 0`);
  if (typeof p.write !== 'boolean') throw new ImageError('EINVAL', undefined, `${what}.pipe.write is not a boolean`);
  if (f.path !== `pipe:[${pipeId}]`) throw new ImageError('EINVAL', undefined, `${what}: path ${JSON.stringify(f.path)} is not "pipe:[${pipeId}]"`);
  if (f.pos !== 0 || f.size !== 0) throw new ImageError('EINVAL', undefined, `${what}: a pipe has no position or size, but pos is ${f.pos} and size ${f.size}`);
  const mode = u32(f.mode, `${what}.mode`);
  if ((mode & S_IFMT) !== S_IFIFO) throw new ImageError('EINVAL', undefined, `${what}: mode 0o${mode.toString(8)} is not that of a pipe (S_IFIFO)`);
  const flags = u32(f.flags, `${what}.flags`);
  const want = p.write ? O_WRONLY : O_RDONLY;
  if ((flags & O_ACCMODE) !== want) {
    throw new ImageError('EINVAL', undefined, `${what}: the ${p.write ? 'write' : 'read'} end of pipe ${pipeId} has flags 0o${flags.toString(8)}, not ${p.write ? 'O_WRONLY' : 'O_RDONLY'}`);
  }
  const external = f.state?.num.external === 1 ? { cryopod_external: true } : {};
  return { id: fileId, pipe_id: pipeId, flags, fown: ZERO_FOWN, cryopod_mode: mode, ...external };
}

/** A SysV segment's mapping name: "/SYSV" and its key in 8 hex digits. */
export const SYSV_PATH = /^\/SYSV[0-9a-f]{8}$/;

/**
 * A mapped deleted file: its VMA's file entry is remapped to a ghost, made by the first VMA of the file
 * (the one with the contents) and shared by the others (`ghostIds`: the task's ghost id → the image's).
 */
function encodeVmaGhost(v: Vma, what: string, fileId: number, table: FileTable, ghostIds: Map<number, number>): void {
  const g = v.ghost;
  if (g === undefined) return;
  if (!isFileKind(v.kind)) throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is ${v.kind} but has a ghost`);
  const known = ghostIds.get(g.id);
  if (known !== undefined) {
    if (g.data !== undefined) throw new ImageError('EINVAL', undefined, `${what} (${v.name}): ghost ${g.id} has its contents in an earlier VMA already`);
    table.ghosts.link(fileId, known);
    return;
  }
  ghostIds.set(g.id, table.ghosts.add(fileId, { mode: u32(g.mode, `${what}.ghost.mode`), data: g.data ?? Buffer.alloc(0), dev: v.dev, ino: v.inode }, what));
}

function encodeVma(v: Vma, i: number, table: FileTable, ghostIds: Map<number, number>): object {
  const what = `vmas[${i}]`;
  let shmid = 0;
  let fdflags: number | undefined;
  let shm: { size: U64; path: string } | undefined;
  if (v.kind === 'shmem') {
    if (v.path === undefined || !(v.path === '/dev/zero' || v.path.startsWith('/memfd:') || SYSV_PATH.test(v.path))) {
      throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is shmem but its path ${JSON.stringify(v.path)} is neither /dev/zero, /memfd:<name> nor /SYSV<key>`);
    }
    if (SYSV_PATH.test(v.path) !== (v.sysvMode !== undefined)) {
      throw new ImageError('EINVAL', undefined, `${what} (${v.name}): a SysV segment needs sysvMode, and only a SysV segment has one`);
    }
    if (v.shmid === undefined || v.shmSize === undefined) throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is shmem but lacks shmid or shmSize`);
    shmid = requireSafe(v.shmid, `${what}.shmid`);
    if (shmid === 0) throw new ImageError('EINVAL', undefined, `${what} (${v.name}): shmid is 0`);
    if ((v.flags & MAP_SHARED) === 0) throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is shmem but not MAP_SHARED`);
    shm = { size: u64FromNumber(v.shmSize, `${what}.shmSize`), path: v.path };
  } else if (v.shmid !== undefined || v.shmSize !== undefined) {
    throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is ${v.kind} but has a shmid or shmSize`);
  } else if (isFileKind(v.kind)) {
    if (v.path === undefined) throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is ${v.kind} but has no path`);
    // The flags CRIU re-opens a mapped file with: writable shared mappings need O_RDWR.
    fdflags = (v.flags & MAP_SHARED) !== 0 && (v.prot & PROT_WRITE) !== 0 ? O_RDWR : O_RDONLY;
    shmid = table.add({ flags: fdflags, name: v.path });
    encodeVmaGhost(v, what, shmid, table, ghostIds);
  } else if (v.ghost !== undefined) {
    throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is ${v.kind} but has a ghost`);
  } else if (v.path !== undefined) {
    // CRIU has no file for such a VMA; dropping the path silently would break the round trip.
    throw new ImageError('EINVAL', undefined, `${what} (${v.name}) is ${v.kind} but has a path (${v.path})`);
  }
  const entry: Record<string, unknown> = {
    start: u64FromNumber(v.start, `${what}.start`),
    end: u64FromNumber(v.end, `${what}.end`),
    pgoff: u64FromNumber(v.pgoff, `${what}.pgoff`),
    shmid: u64FromNumber(shmid, `${what}.shmid`),
    prot: u32(v.prot, `${what}.prot`),
    flags: u32(v.flags, `${what}.flags`),
    status: statusOf(v.kind, v.flags, v.name) >>> 0,
    fd: s64FromNumber(-1),
    madv: u64FromNumber(v.madv, `${what}.madv`),
    cryopod_name: v.name,
  };
  if (fdflags !== undefined) entry.fdflags = fdflags;
  if (v.dev !== undefined) entry.cryopod_dev = u64FromNumber(v.dev, `${what}.dev`);
  if (v.inode !== undefined) entry.cryopod_inode = u64FromNumber(v.inode, `${what}.inode`);
  if (shm !== undefined) {
    entry.cryopod_shm_size = shm.size;
    entry.cryopod_shm_path = shm.path;
  }
  if (v.sysvMode !== undefined) entry.cryopod_sysv_mode = u32(v.sysvMode, `${what}.sysvMode`);
  return entry;
}

function encodeAuxv(auxv: Buffer): U64[] {
  if (auxv.length % 8 !== 0) throw new ImageError('EINVAL', undefined, `mm.auxv is ${auxv.length} bytes, not a whole number of u64 words`);
  if (auxv.length / 8 > MAX_AUXV_WORDS) throw new ImageError('EINVAL', undefined, `mm.auxv has ${auxv.length / 8} words, over the cap of ${MAX_AUXV_WORDS}`);
  const words: U64[] = [];
  for (let off = 0; off < auxv.length; off += 8) words.push(u64FromBigInt(auxv.readBigUInt64LE(off), 'mm.auxv'));
  return words;
}


function encodeMm(task: DumpedTask, exeId: number, vmas: object[]): Uint8Array {
  const m = task.mm;
  const n = (v: number, what: string): U64 => u64FromNumber(v, `mm.${what}`);
  return encodeEntry(messages().mm, {
    mm_start_code: n(m.startCode, 'startCode'),
    mm_end_code: n(m.endCode, 'endCode'),
    mm_start_data: n(m.startData, 'startData'),
    mm_end_data: n(m.endData, 'endData'),
    mm_start_stack: n(m.startStack, 'startStack'),
    mm_start_brk: n(m.startBrk, 'startBrk'),
    mm_brk: n(m.brk, 'brk'),
    mm_arg_start: n(m.argStart, 'argStart'),
    mm_arg_end: n(m.argEnd, 'argEnd'),
    mm_env_start: n(m.envStart, 'envStart'),
    mm_env_end: n(m.envEnd, 'envEnd'),
    exe_file_id: exeId,
    mm_saved_auxv: encodeAuxv(m.auxv),
    vmas,
  });
}

/** The head, then the dumped runs (PE_PRESENT) and the inherited ones (PE_PARENT) merged by address. */
function encodePagemap(task: DumpedTask, pagesId: number): Uint8Array[] {
  const msg = messages();
  const own = task.pages.map((r, i) => ({
    vaddr: r.vaddr,
    bytes: encodeEntry(msg.pagemapEntry, {
      vaddr: u64FromNumber(r.vaddr, `pages[${i}].vaddr`),
      nr_pages: u32(r.nrPages, `pages[${i}].nrPages`),
      flags: PE_PRESENT,
    }),
  }));
  const inherited = (task.inherited ?? []).map((r, i) => ({
    vaddr: r.vaddr,
    bytes: encodeEntry(msg.pagemapEntry, {
      vaddr: u64FromNumber(r.vaddr, `inherited[${i}].vaddr`),
      nr_pages: u32(r.nrPages, `inherited[${i}].nrPages`),
      flags: PE_PARENT,
      cryopod_inherited: true,
    }),
  }));
  const out = [encodeEntry(msg.pagemapHead, { pages_id: pagesId })];
  let a = 0;
  let b = 0;
  while (a < own.length || b < inherited.length) {
    if (b >= inherited.length || (a < own.length && own[a].vaddr <= inherited[b].vaddr)) out.push(own[a++].bytes);
    else out.push(inherited[b++].bytes);
  }
  return out;
}

/** The pipe's buffer size for pipe_data_entry.size: the default 16 pages, or the power of two pages that holds the bytes. */
export function pipeBufferSize(bytes: number): number {
  let size = 16 * PAGE_SIZE;
  while (size < bytes) size *= 2;
  return size;
}

/**
 * pipes-data.img (or fifo-data.img, magic FIFO_DATA, as CRIU keeps a FIFO's bytes): each pipe_data_entry
 * framed as usual and followed by its raw bytes (no padding).
 */
function encodePipesData(pipes: ReadonlyArray<{ id: number; data: Buffer }>, kind: 'PIPES_DATA' | 'FIFO_DATA', name: string): Buffer {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(8);
  header.writeUInt32LE(IMG_COMMON, 0);
  header.writeUInt32LE(MAGIC[kind], 4);
  parts.push(header);
  pipes.forEach((p, i) => {
    const what = `${name}[${i}]`;
    if (!Buffer.isBuffer(p.data)) throw new ImageError('EINVAL', undefined, `${what}.data is not a Buffer`);
    if (p.data.length > MAX_PIPE_BYTES) throw new ImageError('ETOOBIG', undefined, `${what} (pipe ${p.id}) holds ${p.data.length} bytes, over the cap of ${MAX_PIPE_BYTES}`);
    const entry = encodeEntry(messages().pipeData, { pipe_id: u32(p.id, `${what}.id`), bytes: p.data.length, size: pipeBufferSize(p.data.length) });
    const len = Buffer.alloc(4);
    len.writeUInt32LE(entry.length, 0);
    parts.push(len, Buffer.from(entry), p.data);
  });
  return Buffer.concat(parts);
}

/**
 * The bytes FIFOs held (the native core keeps them in the first fd of each FIFO, tree order), keyed as
 * CRIU keys fifo-data.img: by the fifo_entry's pipe_id, the inode's low 32 bits.
 */
function fifoData(tree: DumpedTree): Array<{ id: number; data: Buffer }> {
  const out: Array<{ id: number; data: Buffer }> = [];
  for (const t of tree.tasks)
    for (const f of t.files) {
      const data = f.kind === 'fifo' ? f.state?.data : undefined;
      if (data === undefined || data.length === 0) continue;
      const id = Number(BigInt(f.state!.num.ino ?? 0) & 0xffff_ffffn);
      if (out.some((o) => o.id === id)) throw new ImageError('EINVAL', undefined, `pid ${t.pid} fd ${f.fd}: the bytes of a second FIFO with pipe id ${id}`);
      out.push({ id, data });
    }
  return out;
}

/** A single task as the tree of one it is (no pipes). */
export function treeOf(input: DumpedTask | DumpedTree): DumpedTree {
  if ('tasks' in input) return input;
  return { tasks: [input], pipes: [], frozenSeconds: input.frozenSeconds };
}

interface TaskParts {
  task: DumpedTask;
  index: number;
  fdinfos: Uint8Array[];
  exeId: number;
  cwdId: number;
  rootId: number;
  vmas: object[];
  ids: { vm_id: number; files_id: number; fs_id: number; sighand_id: number };
}

/** The per-task checks and the entries it adds to files.img (fds, exe, cwd, root, mapped files). */
function taskParts(task: DumpedTask, index: number, table: FileTable): TaskParts {
  const who = index === 0 ? '' : `tasks[${index}] (pid ${task.pid}): `;
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ImageError && who !== '' && err.file === undefined) throw new ImageError(err.code, undefined, who + err.message, { cause: err });
      throw err;
    }
  };
  return wrap(() => {
    const pid = requireSafe(u32(task.pid, 'pid'), 'pid');
    if (pid === 0) throw new ImageError('EINVAL', undefined, 'pid is 0');
    const files = task.files;
    files.forEach((f, i) => {
      if (i > 0 && f.fd <= files[i - 1].fd) throw new ImageError('EINVAL', undefined, `files[${i}] (fd ${f.fd}) is not ascending by fd (the one before is fd ${files[i - 1].fd})`);
    });
    checkThreads(task);
    const msg = messages();
    const fdinfos = files.map((f, i) => encodeEntry(msg.fdinfo, encodeOpenFile(f, i, table)));
    const exeId = table.add({ flags: O_RDONLY, name: task.exe });
    const cwdId = table.add({ flags: O_RDONLY | O_DIRECTORY, name: task.cwd });
    const rootId = table.add({ flags: O_RDONLY | O_DIRECTORY, name: task.root });
    const ghostIds = new Map<number, number>();
    const vmas = task.vmas.map((v, i) => encodeVma(v, i, table, ghostIds));
    const id = index + 1;
    return { task, index, fdinfos, exeId, cwdId, rootId, vmas, ids: { vm_id: id, files_id: id, fs_id: id, sighand_id: id } };
  });
}

/** Every image file of the checkpoint of a tree (or one task) except the pages files and the manifest, in writing order. */
export function encodeTree(input: DumpedTask | DumpedTree): EncodedImage[] {
  const tree = treeOf(input);
  const msg = messages();
  if (tree.tasks.length === 0) throw new ImageError('EINVAL', undefined, 'the tree has no task');
  const table = new FileTable();
  const parts = tree.tasks.map((task, i) => taskParts(task, i, table));
  const one = (kind: ImageKind, name: string, entry: Uint8Array): EncodedImage => ({ name, data: frameImage(kind, [entry]) });
  const pstree = parts.map(({ task, index }) => encodeEntry(msg.pstree, {
    pid: task.pid,
    // CRIU's root task has ppid 0; the real parent is kept aside (see pstree.proto).
    ppid: index === 0 ? 0 : u32(task.ppid, `tasks[${index}].ppid`),
    pgid: u32(task.pgid, index === 0 ? 'pgid' : `tasks[${index}].pgid`),
    sid: u32(task.sid, index === 0 ? 'sid' : `tasks[${index}].sid`),
    // Every thread, the main one first (CRIU's item->threads); each has its core-<tid>.img.
    threads: [task.pid, ...task.threads.map((t) => t.tid)],
    cryopod_ppid: u32(task.ppid, index === 0 ? 'ppid' : `tasks[${index}].ppid`),
    ...(task.ownPidNamespace ? { cryopod_pid_ns: true } : {}),
  }));
  const out: EncodedImage[] = [
    one('INVENTORY', imageName.inventory(), encodeEntry(msg.inventory, {
      img_version: CRIU_IMAGES_VERSION,
      fdinfo_per_id: true,
      root_ids: parts[0].ids,
      ns_per_id: false,
      lsmtype: 0,
    })),
    { name: imageName.pstree(), data: frameImage('PSTREE', pstree) },
  ];
  const seccomp = new SeccompTable();
  for (const p of parts) {
    const { task } = p;
    const prefix = p.index === 0 ? '' : `tasks[${p.index}] (pid ${task.pid}).`;
    const newest = seccomp.add(task.processState?.seccomp);  // every thread shares the chain
    out.push(
      one('CORE', imageName.core(task.pid), encodeCore(task, p.ids, newest)),
      ...task.threads.map((t, i) => one('CORE', imageName.core(t.tid), encodeThreadCoreImage(t, `${prefix}threads[${i}] (tid ${t.tid}).`, newest))),
      one('IDS', imageName.ids(task.pid), encodeEntry(msg.ids, p.ids)),
      one('MM', imageName.mm(task.pid), encodeMm(task, p.exeId, p.vmas)),
      { name: imageName.pagemap(task.pid), data: frameImage('PAGEMAP', encodePagemap(task, p.index + 1)) },
    );
  }
  out.push({ name: imageName.files(), data: frameImage('FILES', table.entries) });
  for (const p of parts) {
    out.push(
      { name: imageName.fdinfo(p.ids.files_id), data: frameImage('FDINFO', p.fdinfos) },
      one('FS', imageName.fs(p.task.pid), encodeEntry(msg.fs, { cwd_id: p.cwdId, root_id: p.rootId, umask: u32(p.task.umask, 'umask') })),
    );
  }
  if (tree.pipes.length > 0) out.push({ name: imageName.pipesData(), data: encodePipesData(tree.pipes, 'PIPES_DATA', 'pipes') });
  const fifos = fifoData(tree);
  if (fifos.length > 0) out.push({ name: imageName.fifoData(), data: encodePipesData(fifos, 'FIFO_DATA', 'FIFO') });
  out.push(...table.ghosts.encode(), ...table.memfds.encode(tree.tasks.length));
  if (!seccomp.empty) out.push(one('SECCOMP', imageName.seccomp(), seccomp.encode()));
  return out;
}

/** Every image file of a single task's checkpoint except pages-1.img and the manifest, in writing order. */
export function encodeTask(task: DumpedTask): EncodedImage[] {
  return encodeTree(task);
}
