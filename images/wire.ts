/**
 * Shapes of the decoded messages (protobufjs toObject with longs as strings, see proto.ts), and the
 * numeric constants of the CRIU enums and flags Cryopod writes. Only the fields Cryopod reads.
 */

import { WireU64 } from './u64';

export const FD_TYPE_REG = 1;
export const FD_TYPE_PIPE = 2;
export const FD_TYPE_INETSK = 4;
export const FD_TYPE_FIFO = 3;
export const FD_TYPE_EVENTFD = 6;
export const FD_TYPE_EVENTPOLL = 7;
export const FD_TYPE_INOTIFY = 8;
export const FD_TYPE_SIGNALFD = 9;
export const FD_TYPE_TIMERFD = 17;
export const FD_TYPE_MEMFD = 18;
export const FD_TYPE_UNIXSK = 5;
export const FD_TYPE_NAMES: Record<number, string> = {
  0: 'UND', 1: 'REG', 2: 'PIPE', 3: 'FIFO', 4: 'INETSK', 5: 'UNIXSK', 6: 'EVENTFD', 7: 'EVENTPOLL', 8: 'INOTIFY',
  9: 'SIGNALFD', 10: 'PACKETSK', 11: 'TTY', 12: 'FANOTIFY', 13: 'NETLINKSK', 14: 'NS', 15: 'TUNF', 16: 'EXT',
  17: 'TIMERFD', 18: 'MEMFD', 19: 'BPFMAP', 65534: 'CTL_TTY', 65535: 'AUTOFS_PIPE',
};
export const FD_CLOEXEC = 1;
export const O_RDONLY = 0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_ACCMODE = 0o3;
export const O_DIRECTORY = 0o200000;
export const PROT_WRITE = 0x2;
/** pagemap_entry.flags (criu/include/pagemap.h). */
export const PE_PARENT = 1 << 0;
export const PE_LAZY = 1 << 1;
export const PE_PRESENT = 1 << 2;
/** core_entry.march */
export const MARCH_X86_64 = 1;
/** task_core_entry.task_state: TASK_ALIVE */
export const TASK_ALIVE = 1;
/** cryopod_file_kind in regfile.proto (sockets are INETSK entries, not reg_file_entry). */
export const FILE_KIND = { reg: 1, dir: 2, devnull: 3, chr: 4, tty: 5, ghost: 6 } as const;
export type RegFileKind = keyof typeof FILE_KIND;
/** Socket families, types, protocols and states (inet_sk_entry). */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_UDPLITE = 136;
export const TCP_ESTABLISHED = 1;
export const TCP_CLOSE = 7;
export const TCP_LISTEN = 10;
/** st_mode of a socket: S_IFSOCK, and what sockfs gives every socket (S_IFSOCK | 0777). */
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const SOCKET_MODE = 0o140777;
/** st_mode of a pipe end: S_IFIFO, and what pipefs gives every pipe (S_IFIFO | 0600). */
export const S_IFIFO = 0o010000;
export const PIPE_MODE = 0o010600;

export interface InventoryMsg {
  img_version: number;
}

export interface PstreeMsg {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number[];
  cryopod_ppid?: number;
  cryopod_pid_ns?: boolean;
}

export interface IdsMsg {
  vm_id: number;
  files_id: number;
  fs_id: number;
  sighand_id: number;
}

export interface SaMsg {
  sigaction: WireU64;
  flags: WireU64;
  restorer: WireU64;
  mask: WireU64;
  cryopod_signo?: number;
}

export interface CredsMsg {
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  suid: number;
  sgid: number;
  fsuid: number;
  fsgid: number;
}

export interface CoreMsg {
  mtype: number;
  thread_info?: {
    clear_tid_addr: WireU64;
    gpregs: Record<string, WireU64>;
    fpregs: { cryopod_xsave?: Buffer };
  };
  tc?: {
    personality: number;
    blk_sigset: WireU64;
    comm: string;
    sigactions: SaMsg[];
  };
  ids?: IdsMsg;
  thread_core?: {
    futex_rla: WireU64;
    futex_rla_len: number;
    blk_sigset?: WireU64;
    sas?: { ss_sp: WireU64; ss_size: WireU64; ss_flags: number };
    creds?: CredsMsg;
    rseq_entry?: { rseq_abi_pointer: WireU64; rseq_abi_size: number; signature: number };
  };
}

export interface VmaMsg {
  start: WireU64;
  end: WireU64;
  pgoff: WireU64;
  shmid: WireU64;
  prot: number;
  flags: number;
  status: number;
  madv?: WireU64;
  cryopod_name?: string;
  cryopod_dev?: WireU64;
  cryopod_inode?: WireU64;
  cryopod_shm_size?: WireU64;
  cryopod_shm_path?: string;
  cryopod_sysv_mode?: number;
}

export interface MmMsg {
  mm_start_code: WireU64;
  mm_end_code: WireU64;
  mm_start_data: WireU64;
  mm_end_data: WireU64;
  mm_start_stack: WireU64;
  mm_start_brk: WireU64;
  mm_brk: WireU64;
  mm_arg_start: WireU64;
  mm_arg_end: WireU64;
  mm_env_start: WireU64;
  mm_env_end: WireU64;
  exe_file_id: number;
  mm_saved_auxv: WireU64[];
  vmas: VmaMsg[];
}

export interface PagemapHeadMsg {
  pages_id: number;
}

export interface PagemapEntryMsg {
  vaddr: WireU64;
  nr_pages: number;
  in_parent?: boolean;
  flags?: number;
  cryopod_inherited?: boolean;
}

export interface RegFileMsg {
  id: number;
  flags: number;
  pos: WireU64;
  name: string;
  size?: WireU64;
  mode?: number;
  cryopod_kind?: number;
  cryopod_locks?: Array<{ lock: number; write: boolean; start: WireU64; len: WireU64 }>;
  cryopod_contents?: Uint8Array;
}

export interface SkOptsMsg {
  so_sndbuf: number;
  so_rcvbuf: number;
  reuseaddr?: boolean;
  so_reuseport?: boolean;
}

export interface InetSkMsg {
  id: number;
  ino: number;
  family: number;
  type: number;
  proto: number;
  state: number;
  src_port: number;
  dst_port: number;
  flags: number;
  backlog: number;
  src_addr: number[];
  dst_addr: number[];
  opts: SkOptsMsg;
  v6only?: boolean;
  cryopod_mode?: number;
  cryopod_pending?: number;
}

export interface PipeMsg {
  id: number;
  pipe_id: number;
  flags: number;
  cryopod_mode?: number;
  cryopod_external?: boolean;
}

export interface PipeDataMsg {
  pipe_id: number;
  bytes: number;
  size?: number;
}

export interface FileMsg {
  type: number;
  id: number;
  reg?: RegFileMsg;
  isk?: InetSkMsg;
  pipe?: PipeMsg;
  /** The entries of the kinds of images/files/, by their file_entry field (efd, epfd, ...). */
  [field: string]: unknown;
}

export interface FdinfoMsg {
  id: number;
  flags: number;
  type: number;
  fd: number;
}

export interface FsMsg {
  cwd_id: number;
  root_id: number;
  umask?: number;
}
