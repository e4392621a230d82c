// Our own parasite injector (after CRIU's compel design; no compel code): for as long as a Parasite
// object lives, the seized task runs our freestanding blob (native/parasite) and serves commands over a
// unix socket. The destructor always cures: the blob is stopped (FINI, then PTRACE_INTERRUPT of its
// park), every fd it or we opened in the task is closed, the shared area unmapped, and the XSAVE state
// put back; the SeizedTask then restores the registers and signal mask on detach.
//
// Crash safety (docs/native.md, "When the dumper dies"): from the moment the area exists until the
// last remote syscall before its munmap, every remote syscall runs on the `syscall` at
// PARASITE_GADGET_OFF of the blob, followed by its park loop, and the blob itself parks on FINI or on
// EOF of its control socket. So a dumper SIGKILLed at any stop leaves the task parked in the area (not
// killed by a SIGTRAP, not running on with the dumper's registers), and the rescue record in the area
// (the task's own registers, mask, XSAVE, the fds the infection added, the snapshot child) lets a
// rescuer (rescue.h) put it back exactly.
//
//   dumper                                   task (stopped under ptrace)
//   ──────                                   ─────────────────────────────
//   remote memfd_create + mmap RWX shared ──► area: [blob | args | stack]
//   open /proc/PID/fd/N, mmap shared      ◄── same pages
//   remote socketpair() ×2, pidfd_getfd  ◄── one end of each stays in the task
//   regs: rip=blob, rsp=stack, rdi=args; PTRACE_CONT ──► parasite_main on args->ctl_fd
//   INIT + SCM_RIGHTS(pipe write ends)  ───► keeps the pipes
//   DUMP_PAGES(batch in args)           ───► vmsplice(pipe s % P, segment s)
//   splice(pipe, pages image)           ◄─── (concurrently)
//   FINI                                ───► closes, replies, parks; PTRACE_INTERRUPT stops it
//
// Short freeze: SNAPSHOT makes the blob fork(); the child (a copy-on-write image of the frozen task)
// serves DUMP_PAGES on the second socketpair (inherited through the fork), while the task itself is cured and resumed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "remote_syscall.h"
#include "seized_task.h"
#include "task_model.h"

namespace cryopod {

class Parasite {
 public:
  // phase_fd: the dump's stepping hook (phase.h): "area" once the memfd exists, "unmap" once the area is
  // gone (both with the task parked on the vDSO park, vdso_park.h, when armed).
  Parasite(SeizedTask& task, RemoteSyscalls& rs, const std::string& blob_path, unsigned nr_pipes = 8, int phase_fd = -1);
  ~Parasite();
  Parasite(const Parasite&) = delete;
  Parasite& operator=(const Parasite&) = delete;

  // Writes the pages of `runs` to out_fd (in run order) through the pipes; returns the bytes written.
  uint64_t dump_pages(const std::vector<PageRun>& runs, int out_fd);
  // A round trip through the parasite: its getpid().
  long getpid();
  // Forks the blob inside the (stopped) task: the child holds a copy-on-write snapshot of the task's
  // memory at this instant and serves dump_pages() from now on, so the task can be cured and resumed
  // while its pages are drained. Returns the child's pid in our PID namespace (a child of the task,
  // exit signal 0).
  int fork_snapshot();
  // The snapshot child's ID in the task's own PID namespace (a wait4 inside the task needs that one).
  int snapshot_child_in_task() const { return child_ns_pid_; }
  // Tells the snapshot child to exit; it is then a zombie of the task, to be reaped through the task.
  void finish_snapshot();
  // Bytes of the snapshot no longer shared with the task (pages the task rewrote since the fork, which
  // the kernel copied for it): the memory the short freeze costs.
  uint64_t snapshot_private_bytes() const;
  // Stops the blob and closes every fd the infection added to the task; the area stays mapped, and
  // remote syscalls keep running on its parking gadget (a dumper that dies now leaves the task parked).
  void stop();
  // The task's other threads (seized): their registers and masks go into the rescue record, and cure()
  // puts them back before the area goes. thread_gadget(): where their remote syscalls run, the area's
  // parking gadget when the record holds them all (a dumper that dies leaves them parked), else the vDSO.
  void record_threads(const std::vector<std::unique_ptr<SeizedTask>>& others);
  uint64_t thread_gadget() const;
  // A page inside the area for remote syscalls' arguments, valid until cure().
  uint64_t scratch() const { return remote_area_ ? remote_area_ + kScratchOff : 0; }
  // stop(), then removes every trace of it from the task (also done by the destructor); remote
  // syscalls run on the vDSO gadget again.
  void cure();
  static constexpr uint64_t kScratchOff = 448 * 1024;  // PARASITE_SCRATCH_OFF

 private:
  void start(const std::vector<uint8_t>& blob);
  void connect();
  void send(int sock, uint32_t cmd, uint32_t nr, const int* fds = nullptr, unsigned nfds = 0);
  int64_t receive(int sock, uint32_t cmd, int timeout_ms = 30000);
  void wait_readable(int fd, const char* what, int timeout_ms);
  uint64_t drain(const std::vector<PageRun>& runs, int out_fd);
  int page_socket() const { return child_sock_ready_ ? child_sock_ : sock_fd_; }
  void start_blob();
  int take_socket_end(int* ours);
  int host_pid_of_child(int ns_pid);
  void release_local();
  void write_rescue_record();
  void record_fd(int fd_in_task, uint64_t ino, uint32_t kind);

  SeizedTask& task_;
  RemoteSyscalls& rs_;
  std::vector<SeizedTask*> threads_;  // record_threads(): the other threads, put back by cure()
  bool threads_recorded_ = false;
  int phase_fd_ = -1;
  std::vector<uint8_t> xsave_;
  std::vector<int> fds_before_;
  uint64_t remote_area_ = 0;
  uint8_t* local_area_ = nullptr;
  int pidfd_ = -1, sock_fd_ = -1;
  int memfd_in_task_ = -1;  // the area's memfd in the task, until connect() closes it
  std::vector<int> pipe_rd_;
  size_t pipe_size_ = 0;
  bool cured_ = false, stopped_ = false;
  bool broken_ = false;  // a page batch failed: the blob may be stuck in it, so stop() does not ask it
  uint64_t vdso_gadget_ = 0;
  int child_pid_ = -1, child_ns_pid_ = -1, child_sock_ = -1;  // child_pid_: in our PID namespace
  bool child_sock_ready_ = false;  // set once SNAPSHOT forked the child that serves child_sock_
  bool child_done_ = false;
};

// Splits page runs into segments of at most `seg_bytes` (one pipe's capacity), each a list of iovecs.
struct PageSegment {
  uint64_t bytes = 0;
  std::vector<std::pair<uint64_t, uint64_t>> iovs;  // (address, length)
};
std::vector<PageSegment> split_into_segments(const std::vector<PageRun>& runs, uint64_t seg_bytes);

}  // namespace cryopod
