/**
 * CRIU image files -> the parts of a task, one function per image. Pure: the caller hands in each
 * file's bytes (already verified against the manifest) and its name for error messages. Every
 * function checks counts against the caps and rejects what Cryopod cannot restore faithfully
 * (fd types other than REG, INETSK and PIPE, connected sockets, incremental pagemaps, CRIU's memfd
 * VMAs...) with a message that says so.
 */

import { Creds, MmFields, PageRun, ProcessState, SigAction, ThreadProcessState, ThreadState, Vma } from '../native/lib/types';
import { processStateOf, SeccompMsg, threadProcessStateOf } from './process-state';
import { unframeImage } from './codec';
import { countRepeated, splitRepeated } from './repeated';
import { ImageError } from './errors';
import {
  MAX_AUXV_WORDS, MAX_ENTRY_BYTES, MAX_PAGE_RUNS, MAX_PIPES, MAX_PIPE_BYTES, MAX_SIGACTIONS, MAX_TASKS, MAX_THREADS, MAX_VMAS,
  MAX_XSAVE_BYTES,
} from './limits';
import { CRIU_IMAGES_VERSION, IMG_COMMON, MAGIC } from './magic';
import { decodeEntry, messages } from './proto';
import { bigintOf, numberOf } from './u64';
import { kindOfStatus } from './vma-status';
import {
  CoreMsg, CredsMsg, FsMsg, IdsMsg, InventoryMsg, MARCH_X86_64, MmMsg, VmaMsg, PE_LAZY, PE_PARENT, PE_PRESENT, PagemapEntryMsg, PagemapHeadMsg,
  PipeDataMsg, PstreeMsg,
} from './wire';
import { SYSV_PATH } from './encode';
import { bufferFromGpregs } from './x86';
import { checkPath, single, singleEntry } from './decode-entry';
import { type DecodedFiles, fileById } from './decode-files';

// The files.img / fdinfo decoders live in decode-files.ts; the readers import them from here.
export { decodeFdinfo, decodeFiles, fdinfoFileIds, fileById, type DecodedFiles, type DecodedPipe } from './decode-files';

/** mm_entry's `repeated vma_entry vmas = 14` (images/proto/mm.proto). */
const MM_VMAS_FIELD = 14;

/** The VMAs an mm image's entry holds, counted on the wire (what the reader's entry budget counts). */
export function countMmVmas(file: string, entry: Uint8Array): number {
  return countRepeated(file, 'mm_entry', entry, MM_VMAS_FIELD);
}

export function decodeInventory(file: string, buf: Uint8Array): InventoryMsg {
  const inv = single<InventoryMsg>(file, 'INVENTORY', buf, messages().inventory, 'inventory_entry');
  if (inv.img_version !== CRIU_IMAGES_VERSION) {
    throw new ImageError('EVERSION', file, `img_version ${inv.img_version} is not supported (expected ${CRIU_IMAGES_VERSION}, CRIU images v1.1)`);
  }
  return inv;
}

/**
 * pstree.img: the tasks of the tree in its order, each with its threads. Returns each entry and the
 * tids of its threads other than the main one, ascending (CRIU lists them in /proc/PID/task order,
 * Cryopod main first then ascending). The tree's shape (root first, parents before children, sessions)
 * is checked by tree.ts.
 */
export function decodePstree(file: string, buf: Uint8Array): Array<{ ps: PstreeMsg; otherTids: number[] }> {
  const entries = unframeImage(file, 'PSTREE', buf);
  if (entries.length === 0) throw new ImageError('EDECODE', file, 'holds no pstree_entry');
  if (entries.length > MAX_TASKS) throw new ImageError('ETOOBIG', file, `${entries.length} tasks, over the cap of ${MAX_TASKS}`);
  return entries.map((bytes, i) => {
    const p = decodeEntry<PstreeMsg>(file, entries.length === 1 ? 'pstree_entry' : `entry ${i}`, messages().pstree, bytes);
    if (p.pid === 0) throw new ImageError('EDECODE', file, 'pid is 0');
    if (p.threads.length > MAX_THREADS) throw new ImageError('ETOOBIG', file, `task ${p.pid} has ${p.threads.length} threads, over the cap of ${MAX_THREADS}`);
    const seen = new Set<number>();
    for (const tid of p.threads) {
      if (tid === 0) throw new ImageError('EDECODE', file, `task ${p.pid} has a thread with tid 0`);
      if (seen.has(tid)) throw new ImageError('EDECODE', file, `task ${p.pid} lists thread ${tid} twice`);
      seen.add(tid);
    }
    if (!seen.has(p.pid)) throw new ImageError('EDECODE', file, `task ${p.pid} does not list its main thread (tid ${p.pid}) among its threads`);
    if (i === 0 && p.ppid !== 0) throw new ImageError('EDECODE', file, `the root task ${p.pid} (the first entry) has ppid ${p.ppid}, not 0 as CRIU writes a root`);
    if (i > 0 && p.cryopod_ppid !== undefined && p.cryopod_ppid !== p.ppid) {
      throw new ImageError('EDECODE', file, `task ${p.pid} has ppid ${p.ppid} but cryopod_ppid ${p.cryopod_ppid}`);
    }
    return { ps: p, otherTids: p.threads.filter((t) => t !== p.pid).sort((a, b) => a - b) };
  });
}

export function decodeIds(file: string, buf: Uint8Array): IdsMsg {
  return single<IdsMsg>(file, 'IDS', buf, messages().ids, 'task_kobj_ids_entry');
}

export function decodeFs(file: string, buf: Uint8Array): FsMsg {
  return single<FsMsg>(file, 'FS', buf, messages().fs, 'fs_entry');
}


export interface DecodedCore {
  comm: string;
  personality: number;
  sigmask: bigint;
  sigactions: SigAction[];
  regs: Buffer;
  xsave: Buffer;
  clearChildTid: number;
  robustList: { head: number; len: number };
  altstack: { sp: number; size: number; flags: number };
  rseq: { ptr: number; size: number; signature: number } | null;
  creds: Creds;
  processState?: ProcessState;
  threadState?: ThreadProcessState;
}

type ThreadInfoMsg = NonNullable<CoreMsg['thread_info']>;
type ThreadCoreMsg = NonNullable<CoreMsg['thread_core']>;

function coreEntry(file: string, buf: Uint8Array): CoreMsg {
  const core = single<CoreMsg>(file, 'CORE', buf, messages().core, 'core_entry');
  if (core.mtype !== MARCH_X86_64) throw new ImageError('EDECODE', file, `machine type ${core.mtype} is not x86_64`);
  return core;
}

/** The state every thread has, from its thread_info and thread_core (sigmask read by the caller). */
function threadStateOf(file: string, ti: ThreadInfoMsg, th: ThreadCoreMsg, sigmask: bigint): Omit<ThreadState, 'tid'> {
  if (th.sas === undefined) throw new ImageError('EDECODE', file, 'thread_core lacks sas');
  const xsave = ti.fpregs.cryopod_xsave;
  if (xsave === undefined) throw new ImageError('EDECODE', file, 'has no cryopod_xsave (the raw XSAVE area Cryopod restores from): not a Cryopod image');
  if (xsave.length > MAX_XSAVE_BYTES) throw new ImageError('ETOOBIG', file, `cryopod_xsave is ${xsave.length} bytes, over the cap of ${MAX_XSAVE_BYTES}`);
  const r = th.rseq_entry;
  return {
    regs: bufferFromGpregs(ti.gpregs, file),
    // A copy: the decoded Buffer is a view into the whole image file.
    xsave: Buffer.from(xsave),
    sigmask,
    altstack: { sp: numberOf(th.sas.ss_sp, file, 'sas.ss_sp'), size: numberOf(th.sas.ss_size, file, 'sas.ss_size'), flags: th.sas.ss_flags },
    rseq: r === undefined ? null : { ptr: numberOf(r.rseq_abi_pointer, file, 'rseq_abi_pointer'), size: r.rseq_abi_size, signature: r.signature },
    robustList: { head: numberOf(th.futex_rla, file, 'futex_rla'), len: th.futex_rla_len },
    clearChildTid: numberOf(ti.clear_tid_addr, file, 'clear_tid_addr'),
  };
}

function credsOf(c: CredsMsg): Creds {
  return { uid: c.uid, euid: c.euid, suid: c.suid, fsuid: c.fsuid, gid: c.gid, egid: c.egid, sgid: c.sgid, fsgid: c.fsgid };
}

/** seccomp.img: every seccomp filter of the checkpoint (see process-state.ts). */
export function decodeSeccomp(file: string, buf: Uint8Array): SeccompMsg {
  return single<SeccompMsg>(file, 'SECCOMP', buf, messages().seccomp, 'seccomp_entry');
}

/** The main thread's core-<pid>.img: its own state and the task-wide parts. */
export function decodeCore(file: string, buf: Uint8Array, seccomp?: SeccompMsg): DecodedCore {
  const core = coreEntry(file, buf);
  const { thread_info: ti, tc, thread_core: th } = core;
  if (ti === undefined || tc === undefined || th === undefined) {
    throw new ImageError('EDECODE', file, 'lacks thread_info, tc or thread_core');
  }
  if (th.creds === undefined || th.sas === undefined) throw new ImageError('EDECODE', file, 'thread_core lacks creds or sas');
  const state = threadStateOf(file, ti, th, bigintOf(tc.blk_sigset));
  if (tc.sigactions.length > MAX_SIGACTIONS) throw new ImageError('ETOOBIG', file, `${tc.sigactions.length} sigactions, over the cap of ${MAX_SIGACTIONS}`);
  const sigactions = tc.sigactions.map((sa, i): SigAction => {
    if (sa.cryopod_signo === undefined) throw new ImageError('EDECODE', file, `sigaction ${i} has no cryopod_signo`);
    return {
      signo: sa.cryopod_signo,
      handler: bigintOf(sa.sigaction),
      flags: bigintOf(sa.flags),
      restorer: bigintOf(sa.restorer),
      mask: bigintOf(sa.mask),
    };
  });
  const processState = processStateOf(file, tc, th, seccomp);
  const threadState = threadProcessStateOf(file, th);
  if (processState !== undefined && threadState === undefined) throw new ImageError('EDECODE', file, 'has the process state but not the main thread\'s');
  return { ...state, comm: tc.comm, personality: tc.personality, sigactions, creds: credsOf(th.creds), ...(processState ? { processState, threadState } : {}) };
}

/**
 * Another thread's core-<tid>.img: thread_info and thread_core, no task-wide parts. CRIU also writes
 * per-thread creds there; Cryopod restores every thread with the task's creds, so creds that differ
 * from the main thread's are refused rather than silently dropped (per-thread comm is not kept).
 */
export function decodeThreadCore(file: string, buf: Uint8Array, tid: number, taskCreds: Creds): ThreadState {
  const core = coreEntry(file, buf);
  const { thread_info: ti, thread_core: th } = core;
  if (ti === undefined || th === undefined) throw new ImageError('EDECODE', file, 'lacks thread_info or thread_core');
  if (core.tc !== undefined || core.ids !== undefined) {
    throw new ImageError('EDECODE', file, `thread ${tid} has task-wide parts (tc or ids), which only the main thread's core carries`);
  }
  if (th.blk_sigset === undefined) throw new ImageError('EDECODE', file, 'thread_core lacks blk_sigset');
  if (th.creds !== undefined) {
    const c = credsOf(th.creds);
    const differs = (Object.keys(c) as Array<keyof Creds>).filter((k) => c[k] !== taskCreds[k]);
    if (differs.length > 0) {
      throw new ImageError('EDECODE', file, `thread ${tid} has other creds than the main thread (${differs.join(', ')}); Cryopod restores all threads with the task's creds`);
    }
  }
  const threadState = threadProcessStateOf(file, th);
  return { tid, ...threadStateOf(file, ti, th, bigintOf(th.blk_sigset)), ...(threadState ? { threadState } : {}) };
}

/** The default /proc/PID/maps name of a VMA when the image does not carry it (images not from Cryopod). */
function defaultName(kind: Vma['kind'], path: string | undefined): string {
  if (path !== undefined) return path;
  return kind === 'vdso' ? '[vdso]' : kind === 'vvar' ? '[vvar]' : kind === 'vsyscall' ? '[vsyscall]' : '';
}

export function decodeMm(
  file: string, buf: Uint8Array, files: DecodedFiles, filesImg: string,
): { mm: MmFields; vmas: Vma[]; exeId: number } {
  const n = (v: string | number, what: string): number => numberOf(v, file, what);
  const ghostsSeen = new Set<number>(); // before the VMAs are decoded: vmaOf uses it
  const [entry] = singleEntry(file, 'MM', buf, 'mm_entry');
  // The VMAs are counted on the wire and decoded one at a time (repeated.ts): the cap is checked before
  // anything is built, and no decoded message of all of them ever exists at once.
  const count = countMmVmas(file, entry);
  if (count > MAX_VMAS) throw new ImageError('ETOOBIG', file, `${count} VMAs, over the cap of ${MAX_VMAS}`);
  const vmas: Vma[] = [];
  const rest = splitRepeated(file, 'mm_entry', entry, MM_VMAS_FIELD, (bytes, i) => vmas.push(vmaOf(i, decodeEntry<VmaMsg>(file, `VMA ${i}`, messages().vma, bytes))));
  const m = decodeEntry<MmMsg>(file, 'mm_entry', messages().mm, rest);
  if (m.mm_saved_auxv.length > MAX_AUXV_WORDS) throw new ImageError('ETOOBIG', file, `auxv has ${m.mm_saved_auxv.length} words, over the cap of ${MAX_AUXV_WORDS}`);
  const auxv = Buffer.alloc(m.mm_saved_auxv.length * 8);
  m.mm_saved_auxv.forEach((w, i) => auxv.writeBigUInt64LE(BigInt.asUintN(64, bigintOf(w)), i * 8));
  function vmaOf(i: number, e: VmaMsg): Vma {
    const what = `VMA ${i}`;
    const kind = kindOfStatus(e.status);
    if (typeof kind !== 'string') {
      throw new ImageError('EDECODE', file, `${what} (0x${BigInt(e.start).toString(16)}) has status 0x${(e.status >>> 0).toString(16)}: ${kind.unsupported}, which Cryopod does not restore`);
    }
    let path: string | undefined;
    let shm: { shmid: number; shmSize: number } | undefined;
    if (kind === 'file-private' || kind === 'file-shared') {
      path = fileById(files, n(e.shmid, `${what} shmid`), filesImg, file, what).name;
    } else if (kind === 'shmem') {
      // CRIU keeps shared anonymous memory in pagemap-shmem-<id>.img and memfds in memfd.img; a
      // Cryopod image carries size and path in the VMA and the pages in the task's pagemap.
      if (e.cryopod_shm_size === undefined || e.cryopod_shm_path === undefined) {
        throw new ImageError('EDECODE', file, `${what} (0x${BigInt(e.start).toString(16)}) is shared anonymous memory without cryopod_shm_size and cryopod_shm_path: not a Cryopod image (CRIU's shmem pagemaps are not read)`);
      }
      path = checkPath(file, `${what} shm path`, e.cryopod_shm_path);
      if (path !== '/dev/zero' && !path.startsWith('/memfd:') && !SYSV_PATH.test(path)) {
        throw new ImageError('EDECODE', file, `${what}: shmem path ${JSON.stringify(path)} is neither /dev/zero, /memfd:<name> nor /SYSV<key>`);
      }
      if (SYSV_PATH.test(path) !== (e.cryopod_sysv_mode !== undefined)) {
        throw new ImageError('EDECODE', file, `${what}: a SysV segment needs cryopod_sysv_mode, and only a SysV segment has one`);
      }
      shm = { shmid: n(e.shmid, `${what} shmid`), shmSize: n(e.cryopod_shm_size, `${what} cryopod_shm_size`) };
      if (shm.shmid === 0) throw new ImageError('EDECODE', file, `${what} (0x${BigInt(e.start).toString(16)}) is shmem with shmid 0`);
    } else if (e.cryopod_shm_size !== undefined || e.cryopod_shm_path !== undefined) {
      throw new ImageError('EDECODE', file, `${what} (0x${BigInt(e.start).toString(16)}) is ${kind} but has shmem fields`);
    }
    const vma: Vma = {
      start: n(e.start, `${what} start`),
      end: n(e.end, `${what} end`),
      pgoff: n(e.pgoff, `${what} pgoff`),
      prot: e.prot,
      flags: e.flags,
      kind,
      name: e.cryopod_name === undefined ? defaultName(kind, path) : checkPath(file, `${what} name`, e.cryopod_name),
      madv: e.madv === undefined ? 0 : n(e.madv, `${what} madv`),
    };
    if (path !== undefined) vma.path = path;
    const ghost = kind === 'file-private' || kind === 'file-shared' ? files.ghosts?.get(n(e.shmid, `${what} shmid`)) : undefined;
    if (ghost !== undefined) {
      // The first VMA of a ghost in this task carries its contents (as the dump hands them out).
      vma.ghost = { id: ghost.ghostId, mode: ghost.mode, ...(ghostsSeen.has(ghost.ghostId) ? {} : { data: ghost.data }) };
      ghostsSeen.add(ghost.ghostId);
    }
    if (e.cryopod_dev !== undefined) vma.dev = n(e.cryopod_dev, `${what} dev`);
    if (e.cryopod_inode !== undefined) vma.inode = n(e.cryopod_inode, `${what} inode`);
    if (shm !== undefined) {
      vma.shmid = shm.shmid;
      vma.shmSize = shm.shmSize;
      if (e.cryopod_sysv_mode !== undefined) vma.sysvMode = n(e.cryopod_sysv_mode, `${what} cryopod_sysv_mode`);
    }
    return vma;
  }
  return {
    mm: {
      startCode: n(m.mm_start_code, 'mm_start_code'),
      endCode: n(m.mm_end_code, 'mm_end_code'),
      startData: n(m.mm_start_data, 'mm_start_data'),
      endData: n(m.mm_end_data, 'mm_end_data'),
      startBrk: n(m.mm_start_brk, 'mm_start_brk'),
      brk: n(m.mm_brk, 'mm_brk'),
      startStack: n(m.mm_start_stack, 'mm_start_stack'),
      argStart: n(m.mm_arg_start, 'mm_arg_start'),
      argEnd: n(m.mm_arg_end, 'mm_arg_end'),
      envStart: n(m.mm_env_start, 'mm_env_start'),
      envEnd: n(m.mm_env_end, 'mm_env_end'),
      auxv,
    },
    vmas,
    exeId: m.exe_file_id,
  };
}

/**
 * pagemap-<pid>.img of task i: the head (pages_id must be `pagesId`, i + 1), then PE_PRESENT runs (in
 * the pages file) and PE_PARENT runs marked cryopod_inherited (shared with the parent task), apart.
 */
export function decodePagemap(file: string, buf: Uint8Array, pagesId = 1): { pages: PageRun[]; inherited: PageRun[] } {
  const entries = unframeImage(file, 'PAGEMAP', buf);
  if (entries.length === 0) throw new ImageError('EDECODE', file, 'has no pagemap_head');
  if (entries.length - 1 > MAX_PAGE_RUNS) throw new ImageError('ETOOBIG', file, `${entries.length - 1} page runs, over the cap of ${MAX_PAGE_RUNS}`);
  const head = decodeEntry<PagemapHeadMsg>(file, 'pagemap_head', messages().pagemapHead, entries[0]);
  if (head.pages_id !== pagesId) throw new ImageError('EDECODE', file, `pages_id is ${head.pages_id}; this task's pages are in pages-${pagesId}.img`);
  const pages: PageRun[] = [];
  const inherited: PageRun[] = [];
  entries.slice(1).forEach((bytes, i) => {
    const e = decodeEntry<PagemapEntryMsg>(file, `run ${i}`, messages().pagemapEntry, bytes);
    const flags = e.flags ?? 0;
    const run = { vaddr: numberOf(e.vaddr, file, `run ${i} vaddr`), nrPages: e.nr_pages };
    if (e.cryopod_inherited === true && e.in_parent !== true && flags === PE_PARENT) {
      inherited.push(run);
      return;
    }
    if (e.cryopod_inherited === true) {
      throw new ImageError('EDECODE', file, `run ${i} is marked cryopod_inherited but has flags 0x${flags.toString(16)}${e.in_parent ? ' (in_parent)' : ''}, not PE_PARENT alone`);
    }
    if (e.in_parent === true || (flags & (PE_PARENT | PE_LAZY)) !== 0 || (flags & PE_PRESENT) === 0) {
      throw new ImageError('EDECODE', file, `run ${i} has flags 0x${flags.toString(16)}${e.in_parent ? ' (in_parent)' : ''}: only PE_PRESENT runs and runs inherited from the parent task are supported (no incremental or lazy dumps)`);
    }
    pages.push(run);
  });
  return { pages, inherited };
}

/**
 * pipes-data.img (and fifo-data.img, magic FIFO_DATA, the same layout for FIFOs): pipe_data_entry, then
 * exactly `bytes` raw bytes, again and again. Each pipe at most once, at most MAX_PIPE_BYTES bytes (and
 * `size`, the buffer size, not below `bytes`).
 */
export function decodePipesData(file: string, buf: Uint8Array, kind: 'PIPES_DATA' | 'FIFO_DATA' = 'PIPES_DATA'): Array<{ id: number; data: Buffer }> {
  if (buf.length < 8) throw new ImageError('ETRUNC', file, `${buf.length} bytes is too short for the image magics (8 bytes)`);
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.readUInt32LE(0) !== IMG_COMMON || b.readUInt32LE(4) !== MAGIC[kind]) {
    throw new ImageError('EMAGIC', file, `magics are 0x${b.readUInt32LE(0).toString(16)} 0x${b.readUInt32LE(4).toString(16)}, expected IMG_COMMON and ${kind} (0x${MAGIC[kind].toString(16)})`);
  }
  const out: Array<{ id: number; data: Buffer }> = [];
  const seen = new Set<number>();
  let off = 8;
  while (off < b.length) {
    const i = out.length;
    if (i >= MAX_PIPES) throw new ImageError('ETOOBIG', file, `more than ${MAX_PIPES} pipes`);
    if (b.length - off < 4) throw new ImageError('ETRUNC', file, `entry ${i} at offset ${off}: file ends inside its 4-byte length`);
    const len = b.readUInt32LE(off);
    if (len > MAX_ENTRY_BYTES) throw new ImageError('ETOOBIG', file, `entry ${i} at offset ${off}: length ${len} is over the ${MAX_ENTRY_BYTES}-byte cap`);
    off += 4;
    if (len > b.length - off) throw new ImageError('ETRUNC', file, `entry ${i} at offset ${off - 4}: length ${len} but only ${b.length - off} bytes left`);
    const e = decodeEntry<PipeDataMsg>(file, `entry ${i}`, messages().pipeData, b.subarray(off, off + len));
    off += len;
    const what = `entry ${i} (pipe ${e.pipe_id})`;
    if (e.pipe_id === 0) throw new ImageError('EDECODE', file, `${what}: pipe_id is 0`);
    if (seen.has(e.pipe_id)) throw new ImageError('EDECODE', file, `${what}: pipe ${e.pipe_id} has more than one data entry`);
    seen.add(e.pipe_id);
    if (e.bytes > MAX_PIPE_BYTES) throw new ImageError('ETOOBIG', file, `${what} holds ${e.bytes} bytes, over the cap of ${MAX_PIPE_BYTES}`);
    if (e.size !== undefined && e.size < e.bytes) throw new ImageError('EDECODE', file, `${what} holds ${e.bytes} bytes, more than its buffer size ${e.size}`);
    if (e.bytes > b.length - off) throw new ImageError('ETRUNC', file, `${what}: ${e.bytes} bytes of data but only ${b.length - off} bytes left`);
    // A copy: the slice would keep the whole image file alive.
    out.push({ id: e.pipe_id, data: Buffer.from(b.subarray(off, off + e.bytes)) });
    off += e.bytes;
  }
  return out;
}
