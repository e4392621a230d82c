/**
 * A realistic synthetic DumpedTask for the image tests, shaped like a small C program after a dump:
 * its executable mapped in three parts (one COW-ed data page dumped), a heap with two page runs, a
 * shared file mapping (no pages), vvar and vdso (never dumped), a stack; four fds of every kind;
 * sigactions with full 64-bit masks; a 2688-byte XSAVE area (AVX-512) and a real-looking auxv.
 * No [vsyscall]: it sits at 0xffffffffff600000, above the 2^53 the DumpedTask's numbers can hold.
 */

import { promises as fsp } from 'fs';
import * as path from 'path';
import { DumpedTask, DumpedTree, Vma } from '../../native/lib/types';
import { PAGES_FILE, PAGE_SIZE, pagesFile } from '../magic';

const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_GROWSDOWN = 0x100;
const R = 1;
const W = 2;
const X = 4;

/** Deterministic bytes: the same seed gives the same buffer in every run. */
export function patternBytes(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function regs(seed = 7, ip = 0x5555_5555_5a3cn, sp = 0x7fff_ffff_e3a8n, origAx = 0xffff_ffff_ffff_ffffn): Buffer {
  const b = patternBytes(27 * 8, seed);
  b.writeBigUInt64LE(origAx, 15 * 8); // orig_ax = -1: not in a syscall
  b.writeBigUInt64LE(ip, 16 * 8); // ip
  b.writeBigUInt64LE(0x33n, 17 * 8); // cs
  b.writeBigUInt64LE(sp, 19 * 8); // sp
  return b;
}

function xsave(seed = 11, xstateBv = 0xe7n, bytes = 2688): Buffer {
  const b = patternBytes(bytes, seed);
  b.writeUInt16LE(0x037f, 0); // fcw
  b.writeUInt32LE(0x1f80, 24); // mxcsr
  b.writeUInt32LE(0xffff, 28); // mxcsr_mask
  b.fill(0, 512, 576); // XSAVE header
  b.writeBigUInt64LE(xstateBv, 512); // 0xe7: x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  return b;
}

function auxv(): Buffer {
  const pairs: Array<[bigint, bigint]> = [
    [33n, 0x7fff_f7fc_4000n], // AT_SYSINFO_EHDR
    [16n, 0x178bfbffn], // AT_HWCAP
    [6n, 4096n], // AT_PAGESZ
    [3n, 0x5555_5555_4040n], // AT_PHDR
    [9n, 0x5555_5555_6080n], // AT_ENTRY
    [25n, 0x7fff_ffff_e6b9n], // AT_RANDOM
    [0n, 0n], // AT_NULL
  ];
  const b = Buffer.alloc(pairs.length * 16);
  pairs.forEach(([k, v], i) => {
    b.writeBigUInt64LE(k, i * 16);
    b.writeBigUInt64LE(v, i * 16 + 8);
  });
  return b;
}

export function makeTask(): DumpedTask {
  const exe = '/usr/local/bin/victim';
  return {
    pid: 4242,
    ppid: 4100,
    pgid: 4242,
    sid: 4100,
    comm: 'victim',
    exe,
    cwd: '/srv/app',
    root: '/',
    umask: 0o022,
    personality: 0,
    creds: { uid: 1000, euid: 1000, suid: 1000, fsuid: 1000, gid: 1000, egid: 1000, sgid: 1000, fsgid: 1000 },
    regs: regs(),
    xsave: xsave(),
    sigmask: (1n << 63n) | (1n << 16n),
    sigactions: [
      { signo: 2, handler: 0x5555_5555_5200n, flags: 0x0400_0000n, restorer: 0x7fff_f7c4_2520n, mask: (1n << 63n) | 2n },
      { signo: 10, handler: 1n, flags: 0n, restorer: 0n, mask: 0n },
      { signo: 15, handler: 0x5555_5555_5260n, flags: 0x1400_0000n, restorer: 0x7fff_f7c4_2520n, mask: 0xffff_ffff_ffff_ffffn },
    ],
    altstack: { sp: 0, size: 0, flags: 2 },
    rseq: { ptr: 0x7fff_f7d8_a5e0, size: 32, signature: 0x53053053 },
    robustList: { head: 0x7fff_f7d8_a2a0, len: 24 },
    clearChildTid: 0x7fff_f7d8_a290,
    mm: {
      startCode: 0x5555_5555_6000,
      endCode: 0x5555_5555_7f00,
      startData: 0x5555_5555_9d00,
      endData: 0x5555_5555_a010,
      startBrk: 0x5555_5555_a000,
      brk: 0x5555_5557_b000,
      startStack: 0x7fff_ffff_e4a0,
      argStart: 0x7fff_ffff_e6c9,
      argEnd: 0x7fff_ffff_e6e0,
      envStart: 0x7fff_ffff_e6e0,
      envEnd: 0x7fff_ffff_efe5,
      auxv: auxv(),
    },
    vmas: [
      { start: 0x5555_5555_4000, end: 0x5555_5555_6000, pgoff: 0, prot: R, flags: MAP_PRIVATE, kind: 'file-private', name: exe, path: exe, dev: 0x803, inode: 1_311_977, madv: 0 },
      { start: 0x5555_5555_6000, end: 0x5555_5555_8000, pgoff: 0x2000, prot: R | X, flags: MAP_PRIVATE, kind: 'file-private', name: exe, path: exe, dev: 0x803, inode: 1_311_977, madv: 0 },
      { start: 0x5555_5555_8000, end: 0x5555_5555_a000, pgoff: 0x4000, prot: R | W, flags: MAP_PRIVATE, kind: 'file-private', name: exe, path: exe, dev: 0x803, inode: 1_311_977, madv: 0 },
      { start: 0x5555_5555_a000, end: 0x5555_5557_b000, pgoff: 0, prot: R | W, flags: MAP_PRIVATE | MAP_ANONYMOUS, kind: 'anon', name: '[heap]', madv: 1 << 14 },
      { start: 0x7fff_f7a0_0000, end: 0x7fff_f7a1_0000, pgoff: 0, prot: R | W, flags: MAP_SHARED, kind: 'file-shared', name: '/dev/shm/victim-data', path: '/dev/shm/victim-data', dev: 0x19, inode: 42, madv: 0 },
      { start: 0x7fff_f7b0_0000, end: 0x7fff_f7b0_4000, pgoff: 0, prot: R | W, flags: MAP_PRIVATE | MAP_ANONYMOUS, kind: 'anon', name: '', madv: 1 << 10 },
      { start: 0x7fff_f7fc_0000, end: 0x7fff_f7fc_4000, pgoff: 0, prot: R, flags: MAP_PRIVATE, kind: 'vvar', name: '[vvar]', madv: 0 },
      { start: 0x7fff_f7fc_4000, end: 0x7fff_f7fc_6000, pgoff: 0, prot: R | X, flags: MAP_PRIVATE, kind: 'vdso', name: '[vdso]', madv: 0 },
      { start: 0x7fff_fffd_e000, end: 0x7fff_ffff_f000, pgoff: 0, prot: R | W, flags: MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, kind: 'anon', name: '[stack]', madv: 0 },
    ],
    pages: [
      { vaddr: 0x5555_5555_9000, nrPages: 1 },
      { vaddr: 0x5555_5555_a000, nrPages: 2 },
      { vaddr: 0x5555_5555_e000, nrPages: 1 },
      { vaddr: 0x7fff_f7b0_0000, nrPages: 4 },
      { vaddr: 0x7fff_ffff_c000, nrPages: 3 },
    ],
    files: [
      { fd: 0, kind: 'devnull', path: '/dev/null', flags: 0o100000, cloexec: false, pos: 0, size: 0, mode: 0o20666 },
      { fd: 1, kind: 'chr', path: '/dev/pts/3', flags: 0o100002, cloexec: false, pos: 0, size: 0, mode: 0o20620 },
      { fd: 2, kind: 'reg', path: '/var/log/victim.log', flags: 0o102001, cloexec: false, pos: 73_421, size: 73_421, mode: 0o100644 },
      { fd: 3, kind: 'dir', path: '/srv/app', flags: 0o300000, cloexec: true, pos: 0, size: 4096, mode: 0o40755 },
    ],
    threads: [],
    frozenSeconds: 0.0421,
  };
}

/**
 * The fixture task with three more threads (tids 4243, 4250, 4251), each different from the main
 * thread and from each other in every field: registers, XSAVE area (4250 has AVX only), sigmask,
 * alternate signal stack (4243 has one), rseq (4251 never registered one), robust list, clear_tid.
 */
export function makeThreadedTask(): DumpedTask {
  const task = makeTask();
  const threadArea = (n: number): number => 0x7fff_f6f0_0000 + n * 0x80_0000; // glibc's struct pthread of thread n
  task.threads = [
    {
      tid: 4243,
      regs: regs(21, 0x7fff_f7c9_1117n, 0x7fff_f77f_fd80n, 202n), // in futex(2), to be restarted
      xsave: xsave(23),
      sigmask: 0n,
      altstack: { sp: 0x7fff_f000_0000, size: 0x2000, flags: 0 },
      rseq: { ptr: threadArea(1) + 0x9e0, size: 32, signature: 0x53053053 },
      robustList: { head: threadArea(1) + 0x6a0, len: 24 },
      clearChildTid: threadArea(1) + 0x690,
    },
    {
      tid: 4250,
      regs: regs(31, 0x5555_5555_5b10n, 0x7fff_f6ff_fe10n),
      xsave: xsave(33, 0x7n),
      sigmask: 0xffff_ffff_ffff_ffffn & ~((1n << 8n) | (1n << 18n)), // all but SIGKILL, SIGSTOP (unblockable anyway)
      altstack: { sp: 0, size: 0, flags: 2 },
      rseq: { ptr: threadArea(2) + 0x9e0, size: 32, signature: 0x53053053 },
      robustList: { head: threadArea(2) + 0x6a0, len: 24 },
      clearChildTid: threadArea(2) + 0x690,
    },
    {
      tid: 4251,
      regs: regs(41, 0x7fff_f7c9_2222n, 0x7fff_f5ff_fd40n, 230n), // in clock_nanosleep(2)
      xsave: xsave(43, 0x2e7n, 2696), // with PKRU at 2688
      sigmask: 1n << 9n, // SIGUSR1
      altstack: { sp: 0, size: 0, flags: 2 },
      rseq: null,
      robustList: { head: 0, len: 0 },
      clearChildTid: threadArea(3) + 0x690,
    },
  ];
  return task;
}

/**
 * The fixture task with four sockets more: an IPv4 TCP listener on 0.0.0.0:8000 (fd 4), an IPv6
 * v6only TCP listener on [::]:8443 (fd 5), a UDP socket bound to 127.0.0.1:5353 (fd 7) and a UDP6
 * one bound to the IPv4-mapped ::ffff:10.1.2.3, port 53 (fd 9), as the native side describes them.
 */
export function makeSocketTask(): DumpedTask {
  const task = makeTask();
  const SOCK = 0o140777;
  const O_RDWR = 0o2;
  const O_NONBLOCK = 0o4000;
  task.files.push(
    {
      fd: 4, kind: 'socket', path: 'socket:[48213]', flags: O_RDWR, cloexec: false, pos: 0, size: 0, mode: SOCK,
      socket: { family: 2, type: 1, protocol: 6, state: 'listen', address: '0.0.0.0', port: 8000, backlog: 128, reuseaddr: true, reuseport: false, v6only: false },
    },
    {
      fd: 5, kind: 'socket', path: 'socket:[48214]', flags: O_RDWR | O_NONBLOCK, cloexec: true, pos: 0, size: 0, mode: SOCK,
      socket: { family: 10, type: 1, protocol: 6, state: 'listen', address: '::', port: 8443, backlog: 4096, reuseaddr: true, reuseport: true, v6only: true },
    },
    {
      fd: 7, kind: 'socket', path: 'socket:[4294967295]', flags: O_RDWR, cloexec: true, pos: 0, size: 0, mode: SOCK,
      socket: { family: 2, type: 2, protocol: 17, state: 'bound', address: '127.0.0.1', port: 5353, backlog: 0, reuseaddr: false, reuseport: true, v6only: false },
    },
    {
      fd: 9, kind: 'socket', path: 'socket:[7]', flags: O_RDWR | O_NONBLOCK, cloexec: false, pos: 0, size: 0, mode: SOCK,
      socket: { family: 10, type: 2, protocol: 17, state: 'bound', address: '::ffff:10.1.2.3', port: 53, backlog: 0, reuseaddr: false, reuseport: false, v6only: false },
    },
  );
  return task;
}

export function pagesCount(task: DumpedTask): number {
  return task.pages.reduce((n, r) => n + r.nrPages, 0);
}

/** Writes pages-1.img for `task` as the native core would: its pages back to back, recognisable. */
export async function writePages(dir: string, task: DumpedTask): Promise<Buffer> {
  const data = patternBytes(pagesCount(task) * PAGE_SIZE, 99);
  await fsp.writeFile(path.join(dir, PAGES_FILE), data);
  return data;
}

const SHM_ZERO = { start: 0x7fff_f790_0000, end: 0x7fff_f791_0000 };
const PIPE_MODE = 0o010600;

/**
 * A process tree of four: the threaded fixture task 4242 (root) with children 5001 and 5002, and 5003
 * a child of 5001. Shared anonymous memory (/dev/zero, object 7777) mapped by 4242 (two pages dumped
 * there), 5001 and 5003 (inherited, no pages); a memfd (object 8888) of 5002 alone, with a page. 5001
 * and 5003 share heap pages copy-on-write with their parents (inherited). Pipe 90001 from 4242 (fd 5,
 * write end) to 5001 (fd 0, read end) holds 5000 bytes; pipe 90002, both ends in 5002, is empty. 5002
 * leads a session of its own.
 */
export function makeTree(): DumpedTree {
  const frozenSeconds = 0.25;
  const shmZero = (): Vma => ({
    ...SHM_ZERO, pgoff: 0, prot: R | W, flags: MAP_SHARED, kind: 'shmem', name: '/dev/zero (deleted)', path: '/dev/zero', dev: 1, inode: 7777, madv: 0,
    shmid: 7777, shmSize: 0x10000,
  });
  const withShm = (t: DumpedTask): void => {
    const at = t.vmas.findIndex((v) => v.start > SHM_ZERO.start);
    t.vmas.splice(at, 0, shmZero());
  };

  const root = makeThreadedTask();
  withShm(root);
  root.pages.splice(3, 0, { vaddr: SHM_ZERO.start + 0x3000, nrPages: 2 });
  root.files.push({ fd: 5, kind: 'pipe', path: 'pipe:[90001]', flags: 0o1, cloexec: false, pos: 0, size: 0, mode: PIPE_MODE, pipe: { id: 90001, write: true } });
  root.frozenSeconds = frozenSeconds;

  const a = makeTask();
  Object.assign(a, { pid: 5001, ppid: 4242, pgid: 4242, sid: 4100, comm: 'worker-a', frozenSeconds });
  a.regs = Buffer.from(a.regs);
  a.regs.writeBigUInt64LE(0x5555_5555_5b00n, 16 * 8);
  withShm(a);
  a.files[0] = { fd: 0, kind: 'pipe', path: 'pipe:[90001]', flags: 0o0, cloexec: false, pos: 0, size: 0, mode: PIPE_MODE, pipe: { id: 90001, write: false } };
  // The heap's first two pages are still the parent's; the rest of the heap and the others are its own.
  a.inherited = [{ vaddr: 0x5555_5555_a000, nrPages: 2 }];
  a.pages = a.pages.filter((r) => r.vaddr !== 0x5555_5555_a000);

  const b = makeTask();
  Object.assign(b, { pid: 5002, ppid: 4242, pgid: 5002, sid: 5002, comm: 'worker-b', frozenSeconds, umask: 0o077 });
  const memfd: Vma = {
    start: 0x7fff_f780_0000, end: 0x7fff_f780_2000, pgoff: 0, prot: R, flags: MAP_SHARED, kind: 'shmem', name: '/memfd:cache (deleted)', path: '/memfd:cache',
    dev: 1, inode: 8888, madv: 0, shmid: 8888, shmSize: 0x2000,
  };
  b.vmas.splice(b.vmas.findIndex((v) => v.start > memfd.start), 0, memfd);
  b.pages.splice(3, 0, { vaddr: memfd.start + 0x1000, nrPages: 1 });
  b.files.push(
    { fd: 4, kind: 'pipe', path: 'pipe:[90002]', flags: 0o4000, cloexec: true, pos: 0, size: 0, mode: PIPE_MODE, pipe: { id: 90002, write: false } },
    { fd: 6, kind: 'pipe', path: 'pipe:[90002]', flags: 0o1, cloexec: false, pos: 0, size: 0, mode: PIPE_MODE, pipe: { id: 90002, write: true } },
  );

  const c = makeTask();
  Object.assign(c, { pid: 5003, ppid: 5001, pgid: 4242, sid: 4100, comm: 'worker-a2', frozenSeconds });
  withShm(c);
  c.inherited = [{ vaddr: 0x5555_5555_a000, nrPages: 1 }, { vaddr: 0x7fff_f7b0_0000, nrPages: 4 }];
  c.pages = c.pages.filter((r) => r.vaddr !== 0x5555_5555_a000 && r.vaddr !== 0x7fff_f7b0_0000);

  return {
    tasks: [root, a, b, c],
    pipes: [
      { id: 90001, data: patternBytes(5000, 5) },
      { id: 90002, data: Buffer.alloc(0) },
    ],
    frozenSeconds,
  };
}

/** Writes pages-<i+1>.img of every task of `tree`, each with its own recognisable bytes. */
export async function writeTreePages(dir: string, tree: DumpedTree): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < tree.tasks.length; i++) {
    const data = patternBytes(pagesCount(tree.tasks[i]) * PAGE_SIZE, 100 + i);
    await fsp.writeFile(path.join(dir, pagesFile(i)), data);
    out.push(data);
  }
  return out;
}
