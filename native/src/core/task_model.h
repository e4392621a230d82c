// The in-memory model of one dumped task: what dump() produces and restore() consumes.
// It mirrors native/lib/types.ts (DumpedTask); the N-API glue converts between the two.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "files/file_state.h"
#include "process_state.h"

namespace cryopod {

// A SysV segment's object id in a Vma: its shmid with this bit set (a shmid may be 0).
constexpr uint64_t kSysvShmidBit = 1ULL << 32;

// Shmem: MAP_SHARED anonymous memory or a memfd (a shmem object with no path), dumped once per object.
enum class VmaKind { Anon, FilePrivate, FileShared, Vdso, Vvar, Vsyscall, Shmem };

struct Vma {
  uint64_t start = 0, end = 0;
  uint64_t pgoff = 0;  // bytes
  int prot = 0;        // PROT_*
  int flags = 0;       // MAP_*
  VmaKind kind = VmaKind::Anon;
  std::string name;    // as in /proc/PID/maps
  std::string path;    // backing file, for file kinds
  uint64_t dev = 0, inode = 0;
  uint64_t madv = 0;   // bit n = madvise advice n in effect
  uint64_t shmid = 0;  // Shmem: the object's inode, the same in every VMA and task that maps it
  uint64_t shm_size = 0;  // Shmem: the object's size
  uint32_t sysv_mode = 0;  // Shmem from SysV (path /SYSV<key>): the segment's mode, SHM_DEST (01000) if removed
  // A file mapping whose file was deleted (a "ghost", as CRIU says): `path` is where it was. Every VMA of
  // one file has the same ghost_id (from 1, per task); the first of them carries the file's mode and
  // contents, which the restore writes into a new file at that path, maps, and unlinks again.
  uint32_t ghost_id = 0;
  uint32_t ghost_mode = 0;
  std::vector<uint8_t> ghost_data;

  uint64_t length() const { return end - start; }
  bool is_special() const {
    return kind == VmaKind::Vdso || kind == VmaKind::Vvar || kind == VmaKind::Vsyscall;
  }
};

struct PageRun {
  uint64_t vaddr = 0;
  uint64_t nr_pages = 0;
};

// An IPv4/IPv6 socket that is listening (TCP) or bound and unconnected: re-created, bound and listening
// again on restore. Connections are not saved.
struct InetSocket {
  int family = 0, type = 0, protocol = 0;
  bool listening = false;
  std::string address;  // textual
  int port = 0;
  int backlog = 128;
  bool reuseaddr = false, reuseport = false, v6only = false;
  // A TCP connection at dump time: restored as a socket whose peer is gone (its next read sees a reset).
  bool connected_lost = false;
  // A listener's connections not yet accepted at dump time (see restore_pending_connections).
  int pending = 0;
};

// One fd of the task. `kind` names the module of native/src/core/files that dumped it and restores it
// (files/kinds.def); what only that kind knows sits in `state`.
struct OpenFile {
  int fd = -1;
  std::string kind;  // "reg", "dir", "devnull", "chr", "pipe", "socket", "eventfd", ...
  std::string path;
  int flags = 0;     // O_* without O_CLOEXEC
  bool cloexec = false;
  uint64_t pos = 0;
  uint64_t size = 0;
  uint32_t mode = 0;
  bool has_socket = false;  // kind "socket"
  InetSocket socket;
  uint64_t pipe_id = 0;     // kind "pipe": the pipe's inode, the same for both ends and every holder
  bool pipe_write = false;  // kind "pipe": the write end
  FileState state;          // what only its kind knows
  // One open file description held by several fds (dup'd, or inherited across fork, in one or several
  // tasks of a tree): the same non-zero id on each (files/shared_files.h); the first holder in tree
  // order re-creates it, the others are handed that very description. 0: held by this fd alone.
  uint64_t share_id = 0;
};

// The bytes sitting in a pipe at dump time (read without consuming them, with tee()).
struct PipeImage {
  uint64_t id = 0;
  std::vector<uint8_t> data;
};

struct SigAction {
  int signo = 0;
  uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;
};

struct MmFields {
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
  uint64_t start_brk = 0, brk = 0, start_stack = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
  std::vector<uint8_t> auxv;
};

struct Creds {
  uint32_t uid = 0, euid = 0, suid = 0, fsuid = 0;
  uint32_t gid = 0, egid = 0, sgid = 0, fsgid = 0;
};

// What each thread has of its own. The main thread's is TaskImage::main, the others' TaskImage::threads.
struct ThreadState {
  int tid = 0;
  std::vector<uint8_t> regs;   // struct user_regs_struct, adjusted so an interrupted syscall restarts
  std::vector<uint8_t> xsave;  // NT_X86_XSTATE
  uint64_t sigmask = 0;
  uint64_t altstack_sp = 0, altstack_size = 0;
  int altstack_flags = 0;
  bool has_rseq = false;
  uint64_t rseq_ptr = 0;
  uint32_t rseq_size = 0, rseq_sig = 0;
  uint64_t robust_head = 0, robust_len = 0;
  uint64_t clear_child_tid = 0;
  ThreadProcessState ps;  // scheduling, parent-death signal, pending signals
};

struct TaskImage {
  // As the task sees them: in its own PID namespace when own_pid_ns (a container's), else in ours.
  int pid = 0, ppid = 0, pgid = 0, sid = 0;
  // The task lived in a PID namespace below the dumper's (whose init is pid 1): its IDs, its threads'
  // and its tree's are that namespace's, and a restore gives them back inside a namespace of its own.
  bool own_pid_ns = false;
  int host_pid = 0;  // the PID in the dumper's namespace at dump time (set by a dump; not in images)
  std::string comm, exe, cwd, root;
  uint32_t umask = 022;
  uint32_t personality = 0;
  Creds creds;
  ThreadState main;
  std::vector<ThreadState> threads;  // the other threads, ascending by tid
  std::vector<SigAction> sigactions;
  MmFields mm;
  std::vector<Vma> vmas;
  std::vector<PageRun> pages;
  // Pages still shared copy-on-write with the parent task at the same address (same PFN): not in this
  // task's pages image; the restore forks it from its restored parent so they are shared again.
  std::vector<PageRun> inherited;
  std::vector<OpenFile> files;
  ProcessState state;  // rlimits, timers, shared pending signals, seccomp, capabilities, ...
  double frozen_seconds = 0;
  // How the pages left the task: "parasite" (vmsplice from inside it) or "vm_readv"; "" with none.
  std::string pages_method;
  // BLAKE3 chunked root (image_hash.h) of the pages image as the dump wrote it: hashed in flight.
  std::string pages_blake3;
  std::string pages_chunk_blake3;  // and every chunk's digest, hex, in order (manifest v4)
  double pages_seconds = 0;  // time spent moving page data (part of the frozen time, unless snapshot)
  bool snapshot = false;     // pages drained from a copy-on-write snapshot after the task was resumed
  uint64_t snapshot_private_bytes = 0;  // snapshot pages the task rewrote during the drain (copied)
};

// A process tree: the root first, then every descendant, each parent before its children.
struct TreeImage {
  std::vector<TaskImage> tasks;
  std::vector<PipeImage> pipes;
  double frozen_seconds = 0;
};

}  // namespace cryopod
