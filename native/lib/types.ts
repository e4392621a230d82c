/**
 * The data model the native core hands to JavaScript after a dump, and takes back for a restore.
 *
 * It is one task (a single-threaded process) as the kernel shows it; `images/` turns it into CRIU image
 * files and back. Binary kernel structures (registers, XSAVE area, auxv) travel as Buffers in the host's
 * layout; 64-bit masks as bigint; user-space addresses as numbers (the native side refuses any address
 * at or above 2^53, which no 4-level page table produces).
 */

/** What backs a VMA, as the dumper classified it. */
export type VmaKind =
  | 'anon' // private anonymous memory (including [heap] and [stack])
  | 'file-private' // MAP_PRIVATE of a file: the file is mapped again, COW-ed pages come from the image
  | 'file-shared' // MAP_SHARED of a file: the file itself holds the data, no pages dumped
  | 'vdso' // [vdso]: moved into place on restore, never dumped
  | 'vvar' // [vvar] and [vvar_vclock]: moved with the vDSO
  | 'vsyscall' // [vsyscall]: fixed by the kernel, neither dumped nor restored
  | 'shmem'; // MAP_SHARED anonymous memory or a memfd: a shmem object, its pages dumped once per object

export interface Vma {
  start: number;
  end: number;
  /** File offset in bytes (0 for anonymous memory). */
  pgoff: number;
  /** PROT_* bits. */
  prot: number;
  /** MAP_* bits: MAP_PRIVATE or MAP_SHARED, plus MAP_ANONYMOUS, MAP_GROWSDOWN where they apply. */
  flags: number;
  kind: VmaKind;
  /** The /proc/PID/maps name: a path, or [heap], [stack], [vdso], [vvar], [vvar_vclock], or "". */
  name: string;
  /** For file-backed VMAs: the path the file had at dump time (from /proc/PID/map_files). */
  path?: string;
  /** For file-backed VMAs: device and inode, to detect a different file at restore. */
  dev?: number;
  inode?: number;
  /** Bit n set means madvise advice n is in effect (MADV_HUGEPAGE=14, NOHUGEPAGE=15, DONTFORK=10, ...). */
  madv: number;
  /** kind 'shmem': the object (its inode at dump time), the same in every VMA and task that maps it. */
  shmid?: number;
  /** kind 'shmem': the object's size in bytes. */
  shmSize?: number;
  /**
   * kind 'shmem' with path '/SYSV<key, 8 hex digits>': a SysV segment (shmid = its id + 2^32, since an id
   * may be 0); its mode, with
   * SHM_DEST (0o1000) when it had been removed with IPC_RMID.
   */
  sysvMode?: number;
  /**
   * A file mapping whose file had been deleted (path is where it was): `id` the same in every VMA of one
   * file (from 1, per task), the file's mode, and in the first of them its contents (at most 8 MiB),
   * which the restore writes into a new file at that path, maps and unlinks again.
   */
  ghost?: { id: number; mode: number; data?: Buffer };
}

/** A run of pages, in the order they sit in the pages image. */
export interface PageRun {
  vaddr: number;
  nrPages: number;
}

export type FdKind = 'reg' | 'dir' | 'devnull' | 'chr' | 'socket' | 'unix' | 'pipe' | 'eventfd' | 'epoll' | 'timerfd' | 'signalfd' | 'memfd' | 'fifo' | 'tty' | 'ghost' | 'inotify';

/**
 * What only an fd's kind knows (an eventfd's counter, an epoll's targets), as the native file layer
 * (native/src/core/files/<kind>.cc) and the image module of the kind (images/files/<kind>.ts) name it:
 * numbers (a bigint where a value does not fit 2^53), texts, contents and per-entry states.
 */
export interface FileState {
  num: Record<string, number | bigint>;
  text: Record<string, string>;
  data?: Buffer;
  items?: FileState[];
}

/**
 * Where a restore takes the fd that replaces an external one (a pipe whose other end was outside the
 * checkpointed tree, CRIU's --inherit-fd): an fd of the restoring process, one of the restore stub's own
 * (a restore pod's container stdio), or a path opened in the stub with the saved flags. Without one, a
 * saved fd 0, 1 or 2 takes the restorer's own (the stub's own with stubPid).
 */
/** One fd of a preflight (native/src/core/files/preflight.h). */
export interface FdReport {
  pid: number;
  fd: number;
  /** The /proc/PID/fd link: a path, pipe:[ino], anon_inode:[eventfd], ... */
  object: string;
  /** The file layer's kind that takes it ('' when none does). */
  kind: string;
  verdict: 'saved' | 'external' | 'refused';
  /** What is saved, how an external one comes back, or why it is refused. */
  note: string;
}

export type InheritFd = { fd: number } & ({ restorerFd: number } | { stubFd: number } | { path: string });

export interface OpenFile {
  fd: number;
  kind: FdKind;
  path: string;
  /** O_* flags as /proc/PID/fdinfo shows them (octal there), without O_CLOEXEC. */
  flags: number;
  cloexec: boolean;
  pos: number;
  /** File size and mode at dump time (regular files), to warn or fail when the file changed. */
  size: number;
  mode: number;
  /** kind 'socket': an IPv4/IPv6 socket that is listening (TCP) or bound and unconnected (UDP). */
  socket?: InetSocket;
  /** kind 'pipe': which pipe (its inode, the same for every end and holder in the tree) and which end. */
  pipe?: { id: number; write: boolean };
  /** What only its kind knows (num.external = 1: an external pipe, re-attached on restore). */
  state?: FileState;
  /**
   * One open file description held by several fds (dup'd, or inherited across fork by several tasks of
   * the tree): the same id on each, numbered from 1 in tree order. The first holder re-creates it, the
   * others are handed that very description (same offset, flags, socket). Absent: this fd alone.
   * In the images: one file_entry, referred to by each holder's fdinfo_entry (as CRIU does).
   */
  shareId?: number;
}

/**
 * A socket the restore re-creates: same family, type, protocol, address, port and options, bound again
 * (and listening again). An established connection comes back reset; connections pending in a
 * listener's backlog come back as ones that close at once (`pending`).
 */
export interface InetSocket {
  /** AF_INET (2) or AF_INET6 (10). */
  family: number;
  /** SOCK_STREAM (1) or SOCK_DGRAM (2). */
  type: number;
  protocol: number;
  /**
   * 'connected': a TCP connection at dump time, restored as a socket whose peer is gone (its next read
   * sees ECONNRESET, as after a network failure; the program reconnects). The peer is not recorded.
   */
  state: 'listen' | 'bound' | 'connected';
  /** Bound address, textual (0.0.0.0, ::, 127.0.0.1, ...). */
  address: string;
  port: number;
  backlog: number;
  /**
   * A listener's connections not accepted yet at dump time. They are gone with the old socket; each is
   * restored as a connection that closes at once, so a program told one was waiting does not block in
   * accept(). Absent when none.
   */
  pending?: number;
  reuseaddr: boolean;
  reuseport: boolean;
  /** IPV6_V6ONLY (AF_INET6 only). */
  v6only: boolean;
}

export interface SigAction {
  signo: number;
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export interface MmFields {
  startCode: number;
  endCode: number;
  startData: number;
  endData: number;
  startBrk: number;
  brk: number;
  startStack: number;
  argStart: number;
  argEnd: number;
  envStart: number;
  envEnd: number;
  /** The saved auxiliary vector, as /proc/PID/auxv gives it (pairs of u64, ending in AT_NULL). */
  auxv: Buffer;
}

export interface Creds {
  uid: number;
  euid: number;
  suid: number;
  fsuid: number;
  gid: number;
  egid: number;
  sgid: number;
  fsgid: number;
}

/**
 * The per-thread state of a thread other than the main one (the main thread's is at the top level of
 * DumpedTask: regs, xsave, sigmask, altstack, rseq, robustList, clearChildTid).
 */
export interface ThreadState {
  tid: number;
  regs: Buffer;
  xsave: Buffer;
  sigmask: bigint;
  altstack: { sp: number; size: number; flags: number };
  rseq: { ptr: number; size: number; signature: number } | null;
  robustList: { head: number; len: number };
  clearChildTid: number;
  /** Scheduling, parent-death signal and pending signals of the thread (absent in older images). */
  threadState?: ThreadProcessState;
}

/** What each thread has of its own besides registers (CRIU thread_core_entry). */
export interface ThreadProcessState {
  /** -20..19 (getpriority). */
  nice: number;
  /** SCHED_* (with SCHED_RESET_ON_FORK, 0x40000000, when set). */
  policy: number;
  rtPriority: number;
  /** sched_getaffinity's CPU mask, in 64-bit words. */
  affinity: bigint[];
  /** PR_SET_PDEATHSIG (0: none). */
  pdeathSignal: number;
  /** Signals queued for this thread alone, as 128-byte siginfo_t, in queue order. */
  pendingSignals: Buffer[];
}

/**
 * Task-wide state servers rely on besides memory and files (CRIU task_core_entry, creds_entry and
 * seccomp.img). A restore puts every part back or fails naming it; never with more privilege than the
 * restore stub has.
 */
export interface ProcessState {
  /** By resource number (RLIMIT_CPU = 0 … RLIMIT_RTTIME = 15); RLIM_INFINITY is 2^64 - 1. */
  rlimits: Array<{ cur: bigint; max: bigint }>;
  /** ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF: interval and time left, in microseconds. */
  itimers: Array<{ intervalUs: number; valueUs: number }>;
  /** timer_create timers, each restored with its ID, clock, signal, target and remaining time. */
  posixTimers: Array<{
    id: number;
    clock: number;
    signo: number;
    /** SIGEV_SIGNAL (0), SIGEV_NONE (1), or SIGEV_THREAD_ID | SIGEV_SIGNAL (4). */
    notify: number;
    /** SIGEV_THREAD_ID: the thread, as the task sees it. */
    notifyTid: number;
    sigval: bigint;
    overrun: number;
    intervalNs: number;
    valueNs: number;
  }>;
  /** Signals queued for the whole process, as 128-byte siginfo_t, in queue order. */
  sharedSignals: Buffer[];
  oomScoreAdj: number;
  childSubreaper: boolean;
  noNewPrivs: boolean;
  /** The seccomp filter chain, oldest first: struct sock_filter arrays and their install flags. */
  seccomp: Array<{ insns: Buffer; flags: number }>;
  caps: { inheritable: bigint; permitted: bigint; effective: bigint; bounding: bigint; ambient: bigint; securebits: number };
}

export interface DumpedTask {
  /** pid, ppid, pgid, sid and thread ids as the task saw them: in its own PID namespace when ownPidNamespace. */
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  /**
   * Set when the task lived in a PID namespace below the dumper's (a container's): its IDs (and its
   * tree's) are that namespace's; a restore gives them back inside a PID namespace of its own (the
   * restore pod container's, or a new one whose init it becomes when it was pid 1).
   */
  ownPidNamespace?: boolean;
  /** The task's PID in the dumper's PID namespace at dump time: set by a dump, not stored in images. */
  hostPid?: number;
  comm: string;
  exe: string;
  cwd: string;
  root: string;
  umask: number;
  personality: number;
  creds: Creds;
  /** struct user_regs_struct (x86_64, 27 u64), already adjusted so that an interrupted syscall restarts. */
  regs: Buffer;
  /** The XSAVE area from PTRACE_GETREGSET(NT_X86_XSTATE). */
  xsave: Buffer;
  sigmask: bigint;
  sigactions: SigAction[];
  altstack: { sp: number; size: number; flags: number };
  rseq: { ptr: number; size: number; signature: number } | null;
  robustList: { head: number; len: number };
  clearChildTid: number;
  mm: MmFields;
  vmas: Vma[];
  /** Pages in the pages image, in file order (each run is contiguous in the file). */
  pages: PageRun[];
  /**
   * Pages still shared copy-on-write with the parent task at dump time (same address, same physical
   * page): not in this task's pages image; a tree restore forks the task from its restored parent so they
   * are shared again. Empty outside trees.
   */
  inherited?: PageRun[];
  /** The other threads of the process, ascending by tid (empty for a single-threaded process). */
  threads: ThreadState[];
  /** Set by dumps that save it (absent in older images: a restore then keeps the stub's). */
  processState?: ProcessState;
  /** The main thread's own part (see ThreadState.threadState). */
  threadState?: ThreadProcessState;
  /** Open file descriptors, ascending by fd. */
  files: OpenFile[];
  /** Seconds spent frozen (seized until detached or killed), as measured by the native core. */
  frozenSeconds: number;
  /** How the pages left the task (set by a dump, absent when it had none; not stored in images). */
  pagesMethod?: DumpMethod;
  /**
   * BLAKE3 of the pages image as the dump wrote it, over the digests of its 1 MiB chunks (the manifest's
   * v4 pages digest), hashed while the pages moved (native/src/core/image_hash.h).
   */
  pagesBlake3?: string;
  /** Every chunk's BLAKE3 (hex, 64 digits each, in order: manifest v4's chunkBlake3), from the same pass. */
  pagesChunkBlake3?: string;
  /** Seconds of the frozen time spent moving page data (set by a dump; not stored in images). */
  pagesSeconds?: number;
  /** Set when the pages came from a copy-on-write snapshot (short freeze); not stored in images. */
  snapshot?: {
    /** Snapshot pages the task rewrote while they were drained (the kernel copied them): the extra memory. */
    privateBytes: number;
  };
}

/**
 * A process tree: the root first, then every descendant, each parent before its children. Each task's
 * pages are in its own pages image (pages-<i+1>.img for task i). Pipes among the tasks are saved with
 * the bytes they held.
 */
export interface DumpedTree {
  tasks: DumpedTask[];
  pipes: Array<{ id: number; data: Buffer }>;
  frozenSeconds: number;
}

export interface TreeDumpOptions {
  pid: number;
  /** Directory for the pages images (pages-1.img … pages-N.img). */
  pagesDir: string;
  leaveRunning: boolean;
  stopAfter?: boolean;
  method?: DumpMethod;
  pipes?: number;
  /** The tree's cgroup (a container's): frozen so that every process stops at one instant. */
  freezer?: FreezerSpec;
  /** As DumpOptions.phaseFd: seize, then infect, drain and state for each process in turn. */
  phaseFd?: number;
}

export interface TreeRestoreOptions {
  tree: DumpedTree;
  /** One pages image per task, in tree order. */
  pagesPaths: string[];
  stubPath?: string;
  uid?: number;
  gid?: number;
  /** Morph this running restore stub (a restore pod's container) into the root, as RestoreOptions.stubPid. */
  stubPid?: number;
  /** What replaces each external fd (see InheritFd). */
  inheritFds?: InheritFd[];
  /** As RestoreOptions.phaseFd (memory: once every task's memory is filled). */
  phaseFd?: number;
}

export interface DumpOptions {
  pid: number;
  /** Raw pages image to create (pages-1.img in the image directory). */
  pagesPath: string;
  /** Leave the task running after the dump (default: kill it, as CRIU does). */
  leaveRunning: boolean;
  /**
   * When not leaving it running: leave the task stopped (SIGSTOP) instead of killing it, so the caller
   * kills it only once the images are safely written, and SIGCONTs it if writing failed.
   */
  stopAfter?: boolean;
  /**
   * How pages leave the task: 'parasite' (default) runs our blob inside it, which vmsplice()s them into
   * pipes that are splice()d into the image; 'vm_readv' copies them with process_vm_readv (the fallback
   * and the benchmark baseline).
   */
  method?: DumpMethod;
  /** Pipes between parasite and dumper (1..16, default 8); each holds up to 1 MiB. */
  pipes?: number;
  /**
   * The task's cgroup (a container's): frozen first so that all its threads stop at one instant, seized
   * while frozen, then thawed into the ptrace stops; always thawed when anything fails. frozenSeconds
   * then counts from the freeze.
   */
  freezer?: FreezerSpec;
  /**
   * Short freeze (leaveRunning with the parasite): the parasite forks inside the frozen task, the task
   * is resumed at once, and the pages are drained from the child's copy-on-write snapshot, so the task
   * is frozen for about the time of a fork, not of writing the images.
   */
  snapshot?: boolean;
  /**
   * A stepping hook: at each phase (seize, infect, snapshot, drain, cure) the dumper writes the phase's
   * name and a newline to this fd and waits for one byte (EOF: it goes on). The crash-safety tests kill
   * it exactly there.
   */
  phaseFd?: number;
}

export interface FreezerSpec {
  /** v1: <path>/freezer.state (FROZEN/THAWED); v2: <path>/cgroup.freeze (1/0). */
  kind: 'v1' | 'v2';
  /** The cgroup directory, e.g. /sys/fs/cgroup/freezer/kubepods/pod<uid>/<container id>. */
  path: string;
}

export type DumpMethod = 'parasite' | 'vm_readv';

export interface RestoreOptions {
  task: DumpedTask;
  pagesPath: string;
  /** The static restore stub (native/stub/cryopod-stub). */
  stubPath: string;
  /** Credentials the stub is started with (root only can choose; default: the caller's). */
  uid?: number;
  gid?: number;
  /**
   * Morph this running restore stub instead of spawning one: a restore pod's container, started by the
   * container runtime with the stub as its command (so with the pod's namespaces, cgroups and
   * credentials). It must be a waiting cryopod-stub; it is killed if the restore fails.
   */
  stubPid?: number;
  /** What replaces each external fd (see InheritFd). */
  inheritFds?: InheritFd[];
  /**
   * A stepping hook, as DumpOptions.phaseFd: seize (the stub seized, nothing of it changed), memory (its
   * address space is the task's, filled and verified), release (all done but letting it go). The agent's
   * crash tests kill the restorer there.
   */
  phaseFd?: number;
}

/**
 * What an Error from the native core carries besides its message: a stable code (ESRCH, EZOMBIE,
 * ECHECKSUM, ...), the errno of a failed system call, and the operation that failed and the path it
 * acted on when there is one (`op: 'open', path: '/…/pages-1.img'`; a fill's digest mismatch is
 * `op: 'verify'`).
 */
export interface NativeErrorFields {
  code: string;
  errno?: number;
  op?: string;
  path?: string;
}

/** What rescueTask found and undid of a dead dumper's work on one task (native/src/core/rescue.h). */
export interface RescueReport {
  /** The task no longer exists. */
  gone: boolean;
  /** The task still mapped a parasite area with its rescue record. */
  infected: boolean;
  /** It was parked in the area: its own registers, signal mask and FPU state were put back. */
  registersRestored: boolean;
  /** Other threads that were parked in the area: their own registers and masks were put back. */
  threadsRestored: number;
  fdsClosed: number;
  /** Snapshot children (zombies with exit signal 0) reaped through the task. */
  childrenReaped: number;
  /** It was in a group stop the caller said was the dumper's, and got SIGCONT. */
  resumed: boolean;
}
