#include "dump_steps.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <sys/wait.h>

#include <chrono>
#include <algorithm>
#include <cstring>
#include <memory>
#include <set>

#include <chrono>
#include <thread>

#include "errors.h"
#include "page_bitmap.h"
#include "page_copy.h"
#include "parasite.h"
#include "phase.h"
#include "proc.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "vdso_park.h"
#include "vmas.h"
#include "files/inet_socket.h"

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

namespace cryopod {


namespace {

struct RseqConfig {
  uint64_t rseq_abi_pointer;
  uint32_t rseq_abi_size;
  uint32_t signature;
  uint32_t flags;
  uint32_t pad;
};

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

struct KernelStack {
  uint64_t sp;
  int32_t flags;
  int32_t pad;
  uint64_t size;
};

constexpr long kERESTARTSYS = 512, kERESTARTNOINTR = 513, kERESTARTNOHAND = 514, kERESTART_RESTARTBLOCK = 516;

}  // namespace

std::string task_name(int pid) { return "pid " + std::to_string(pid); }

std::vector<int> list_tasks(int pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) throw_errno_at("opendir", dir);
  std::vector<int> tids;
  while (dirent* de = readdir(d))
    if (de->d_name[0] != '.') tids.push_back(std::atoi(de->d_name));
  closedir(d);
  return tids;
}

// Refuses, before touching the task, what this dumper cannot do.
void check_dumpable(int pid) {
  if (pid <= 0) throw CoreError("EINVAL", "invalid pid " + std::to_string(pid));
  if (pid == getpid()) throw CoreError("EINVAL", "cannot dump the dumper itself");
  if (kill(pid, 0) != 0 && errno == ESRCH) throw CoreError("ESRCH", "no such process: " + std::to_string(pid));
  ProcStatus st;
  try {
    st = read_status(pid);
  } catch (const CoreError&) {
    throw CoreError("ESRCH", "no such process: " + std::to_string(pid));
  }
  if (st.state == 'Z' || st.state == 'X')
    throw CoreError("EZOMBIE", task_name(pid) + " is a zombie (it has exited): nothing to dump");
  // Our own child's stop and exit notifications would also reach Node's child reaper (libuv waits on the
  // children it spawned), which could swallow a ptrace stop: such a task must be started detached.
  if (read_stat(pid).ppid == getpid())
    throw CoreError("EINVAL", task_name(pid) + " is a child of the dumping process: start it through a launcher "
                              "that detaches it (e.g. setsid -f) so that Node does not reap its stops");
  if (st.tracer_pid != 0)
    throw CoreError("EBUSY", task_name(pid) + " is already traced by pid " + std::to_string(st.tracer_pid));
}

// Registers as a restore must load them: a syscall the stop interrupted is set up to run again
// (or to return EINTR where the kernel's restart block cannot survive the checkpoint), as CRIU does.
std::vector<uint8_t> resumable_regs(const user_regs_struct& live) {
  user_regs_struct r = live;
  if ((long)r.orig_rax >= 0) {
    long rax = (long)r.rax;
    if (rax == -kERESTARTSYS || rax == -kERESTARTNOINTR || rax == -kERESTARTNOHAND) {
      r.rax = r.orig_rax;
      r.rip -= 2;
    } else if (rax == -kERESTART_RESTARTBLOCK) {
      r.rax = (unsigned long long)-EINTR;
    }
  }
  std::vector<uint8_t> out(sizeof r);
  memcpy(out.data(), &r, sizeof r);
  return out;
}

void read_identity(int pid, TaskImage& t) {
  std::string base = "/proc/" + std::to_string(pid) + "/";
  ProcStat ps = read_stat(pid);
  ProcStatus st = read_status(pid);
  t.pid = pid;
  t.ppid = ps.ppid;
  t.pgid = ps.pgrp;
  t.sid = ps.session;
  t.comm = read_text(base + "comm");
  while (!t.comm.empty() && t.comm.back() == '\n') t.comm.pop_back();
  t.exe = read_link(base + "exe");
  t.cwd = read_link(base + "cwd");
  t.root = read_link(base + "root");
  t.umask = st.umask;
  t.personality = (uint32_t)std::stoul(read_text(base + "personality"), nullptr, 16);
  t.creds = Creds{st.uid[0], st.uid[1], st.uid[2], st.uid[3], st.gid[0], st.gid[1], st.gid[2], st.gid[3]};
  t.mm.start_code = ps.start_code;
  t.mm.end_code = ps.end_code;
  t.mm.start_data = ps.start_data;
  t.mm.end_data = ps.end_data;
  t.mm.start_brk = ps.start_brk;
  t.mm.start_stack = ps.start_stack;
  t.mm.arg_start = ps.arg_start;
  t.mm.arg_end = ps.arg_end;
  t.mm.env_start = ps.env_start;
  t.mm.env_end = ps.env_end;
  t.mm.auxv = read_binary(base + "auxv");
}


// What ptrace reports of one stopped thread without running anything in it.
ThreadState thread_registers(SeizedTask& task) {
  ThreadState th;
  th.tid = task.pid();
  th.regs = resumable_regs(task.original_regs());
  th.xsave = task.xsave();
  th.sigmask = task.original_sigmask();
  RseqConfig rc{};
  if (ptrace((__ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, task.pid(), (void*)sizeof rc, &rc) > 0 &&
      rc.rseq_abi_pointer != 0) {
    th.has_rseq = true;
    th.rseq_ptr = rc.rseq_abi_pointer;
    th.rseq_size = rc.rseq_abi_size;
    th.rseq_sig = rc.signature;
  }
  void* head = nullptr;
  size_t len = 0;
  if (syscall(SYS_get_robust_list, task.pid(), &head, &len) == 0) {
    th.robust_head = (uint64_t)head;
    th.robust_len = len;
  }
  return th;
}

// What only the thread itself can report: clear_child_tid and its sigaltstack (remote syscalls).
void thread_in_task_state(RemoteSyscalls& rs, int tid, uint64_t scratch, ThreadState& th) {
  rs.must("prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, scratch);
  remote_read(tid, scratch, &th.clear_child_tid, sizeof th.clear_child_tid);
  rs.must("sigaltstack", SYS_sigaltstack, 0, scratch);
  KernelStack ks{};
  remote_read(tid, scratch, &ks, sizeof ks);
  th.altstack_sp = ks.sp;
  th.altstack_size = ks.size;
  th.altstack_flags = ks.flags;
}

// Process-wide state only the task can report (signal handlers, brk), then every thread's own, all on
// one scratch page the main thread maps and unmaps.
void collect_in_task_state(SeizedTask& main, RemoteSyscalls& rs, std::vector<std::unique_ptr<SeizedTask>>& others,
                           uint64_t gadget, TaskImage& t, uint64_t given_scratch) {
  uint64_t scratch = given_scratch ? given_scratch
                                   : (uint64_t)rs.must("mmap scratch", SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE,
                                                       MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0);
  try {
    for (int sig = 1; sig <= 64; ++sig) {
      if (sig == SIGKILL || sig == SIGSTOP) continue;
      long r = rs.call(SYS_rt_sigaction, sig, 0, scratch, 8);
      if (r < 0) continue;  // signal numbers the kernel does not know
      KernelSigaction ka{};
      remote_read(main.pid(), scratch, &ka, sizeof ka);
      if (ka.handler == 0 && ka.flags == 0 && ka.mask == 0) continue;  // SIG_DFL, nothing to restore
      t.sigactions.push_back(SigAction{sig, ka.handler, ka.flags, ka.restorer, ka.mask});
    }
    t.mm.brk = (uint64_t)rs.call(SYS_brk, 0);
    for (OpenFile& f : t.files)
      if (f.has_socket) describe_socket(rs, main.pid(), scratch, f);
    thread_in_task_state(rs, main.pid(), scratch, t.main);
    for (size_t i = 0; i < others.size(); ++i) {
      RemoteSyscalls trs(*others[i], gadget);
      thread_in_task_state(trs, others[i]->pid(), scratch, t.threads[i]);
    }
    collect_process_state(main, rs, others, gadget, scratch, t);
  } catch (...) {
    if (!given_scratch) rs.call(SYS_munmap, scratch, kPageSize);
    throw;
  }
  if (!given_scratch) rs.must("munmap scratch", SYS_munmap, scratch, kPageSize);
}

// Seizes every thread but the main one, listing /proc/PID/task again until a listing finds no thread
// that is not stopped yet (a running thread may clone while we seize).
std::vector<std::unique_ptr<SeizedTask>> seize_other_threads(int pid) {
  std::vector<std::unique_ptr<SeizedTask>> out;
  std::set<int> seized{pid};
  for (;;) {
    bool found = false;
    for (int tid : list_tasks(pid)) {
      if (seized.count(tid)) continue;
      try {
        out.push_back(std::make_unique<SeizedTask>(tid));
      } catch (const CoreError& e) {
        if (e.code() != "ESRCH") throw;  // the thread exited before we got to it: nothing to dump
      }
      seized.insert(tid);
      found = true;
    }
    if (!found) break;
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->pid() < b->pid(); });
  return out;
}

// Seizes every thread of a task whose cgroup is frozen: nothing can clone, so one listing is complete.
// The interrupts are queued while frozen and taken once thawed. On failure: thaw, then detach all.
std::vector<std::vector<std::unique_ptr<SeizedTask>>> seize_while_frozen(const std::vector<int>& pids, CgroupFreezer& freezer) {
  std::vector<std::vector<int>> tids;  // per pid, main thread first
  try {
    for (int pid : pids) {
      tids.emplace_back();
      std::vector<int> all = list_tasks(pid);
      std::sort(all.begin(), all.end(), [pid](int a, int b) { return a == pid ? true : b == pid ? false : a < b; });
      for (int tid : all) {
        SeizedTask::seize_and_interrupt(tid);
        tids.back().push_back(tid);
      }
    }
  } catch (...) {
    freezer.thaw();
    for (auto& group : tids)
      for (int tid : group) {
        try {
          SeizedTask undo(tid, SeizedTask::Interrupted{});  // waits for its stop; the destructor detaches
        } catch (...) {
        }
      }
    throw;
  }
  freezer.thaw();
  std::vector<std::vector<std::unique_ptr<SeizedTask>>> out;
  for (size_t i = 0; i < pids.size(); ++i) {
    out.emplace_back();
    for (int tid : tids[i]) {
      try {
        out.back().push_back(std::make_unique<SeizedTask>(tid, SeizedTask::Interrupted{}));
      } catch (const CoreError& e) {
        if (tid == pids[i] || e.code() != "ESRCH") throw;  // a thread that exited meanwhile has nothing to dump
      }
    }
  }
  // The cgroup is what the caller was allowed to act on (the node agent: the target container's). Every
  // thread now held must be in it: checked after the seize, when no task can move or be replaced by a
  // new one under a recycled PID, and before anything is read. On a refusal `out` detaches them all.
  std::set<int> members = freezer.threads();
  for (const auto& group : out)
    for (const auto& th : group)
      if (!members.count(th->pid()))
        throw CoreError("ECGROUP", task_name(th->pid()) + (th->pid() == group.front()->pid() ? "" : " (a thread of " + task_name(group.front()->pid()) + ")") +
                                       " is not in the cgroup " + freezer.dir() + " being checkpointed: refused, nothing was dumped");
  return out;
}

std::unique_ptr<SeizedTask> seize_frozen(int pid, CgroupFreezer& freezer, std::vector<std::unique_ptr<SeizedTask>>& others) {
  auto all = std::move(seize_while_frozen({pid}, freezer).front());
  for (size_t i = 1; i < all.size(); ++i) others.push_back(std::move(all[i]));
  return std::move(all.front());
}

// Kill while every thread is still stopped; the tracer must collect each thread's exit.
void kill_all(SeizedTask& main, std::vector<std::unique_ptr<SeizedTask>>& others) {
  kill(main.pid(), SIGKILL);
  for (auto& th : others) th->reap_after_kill();
  main.kill_and_reap();
}

bool snapshot_possible(const std::vector<Vma>& vmas) {
  // fork() leaves out MADV_DONTFORK memory and zeroes MADV_WIPEONFORK memory, and shares rather than
  // copies MAP_SHARED memory: a task with any of these is dumped fully frozen.
  for (const Vma& v : vmas) {
    if (v.madv & ((1ULL << MADV_DONTFORK) | (1ULL << MADV_WIPEONFORK))) return false;
    if (v.kind == VmaKind::Shmem) return false;
  }
  return true;
}

void fsync_if_file(int fd, const std::string& path) {
  struct stat st {};
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && fsync(fd) != 0) throw_errno_at("fsync", path);
}

// The snapshot child is a zombie child of the task once drained; only the task can reap it. Its exit
// is waited for from here first, so the remote wait4 (WNOHANG) returns at once: the task spends no
// time at the gadget; and that gadget is the vDSO park (vdso_park.h) when it can be armed, so a dumper
// that dies there leaves the task parked for the rescue, not running on with our registers.
void reap_through_task(int pid, int child_in_task, int child_host, uint64_t gadget, int phase_fd) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    char state = 'X';
    try {
      state = read_stat(child_host).state;
    } catch (const CoreError&) {
    }
    if (state == 'Z' || state == 'X') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  try {
    SeizedTask again(pid);
    VdsoPark park(again);
    RemoteSyscalls rs(again, park.gadget() ? park.gadget() : gadget);
    rs.call(SYS_wait4, (uint64_t)child_in_task, 0, WNOHANG | __WALL, 0);
    phase(phase_fd, "reap");
    again.detach();
  } catch (const CoreError&) {
    // the task exited meanwhile: its children went to init, which reaps them
  }
}

}  // namespace cryopod
