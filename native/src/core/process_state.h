// Process state besides memory and files that servers rely on (issue 10, item 3), after the fields of
// CRIU's core.img: rlimits, interval and POSIX timers, pending signals, scheduling, parent-death
// signal, child subreaper, no_new_privs, seccomp filters, capabilities, oom_score_adj.
//
//   dump (task stopped)                          restore (stub morphed, threads exist, all stopped)
//   ───────────────────                          ───────────────────────────────────────────────────
//   rlimits, itimers, timers: remote syscalls     sched per thread → rlimits → itimers, POSIX timers
//   pending signals: PTRACE_PEEKSIGINFO            (same IDs: PR_TIMER_CREATE_RESTORE_IDS) → subreaper,
//   sched: sched_get* / getpriority from here      personality, oom_score_adj (written by the task
//   seccomp: PTRACE_SECCOMP_GET_FILTER             itself: its own rights) → pending signals queued by
//   caps, no_new_privs: /proc/PID/status            the task to itself → no_new_privs → seccomp (TSYNC,
//   pdeathsig, subreaper, securebits: prctl         oldest first, on top of the stub's) → capabilities
//                                                  (never more than the stub has) → pdeathsig
//
// What cannot be put back exactly is refused by name, at dump (SCHED_DEADLINE, seccomp strict mode,
// threads with different filters or capabilities) or at restore (a limit, a capability or a priority
// above what the stub may have): never a silently different process.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace cryopod {

class SeizedTask;
class RemoteSyscalls;
class Morph;
struct TaskImage;
struct ThreadState;

constexpr int kNumRlimits = 16;     // RLIM_NLIMITS on x86_64
constexpr size_t kSiginfoSize = 128;
constexpr size_t kMaxPendingSignals = 4096;
constexpr size_t kMaxPosixTimers = 4096;
constexpr size_t kMaxSeccompFilters = 64;
constexpr size_t kMaxSeccompInsns = 4096;  // BPF_MAXINSNS

struct Rlimit {
  uint64_t cur = 0, max = 0;
};

// struct itimerval in microseconds: interval and the time left.
struct IntervalTimer {
  uint64_t interval_us = 0, value_us = 0;
};

struct PosixTimer {
  int32_t id = 0;
  int32_t clock = 0;
  int32_t signo = 0;
  int32_t notify = 0;      // SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD_ID | SIGEV_SIGNAL
  int32_t notify_tid = 0;  // SIGEV_THREAD_ID: the thread, in the task's own PID namespace
  uint64_t sigval = 0;
  uint32_t overrun = 0;
  uint64_t interval_ns = 0, value_ns = 0;
};

struct Capabilities {
  uint64_t inheritable = 0, permitted = 0, effective = 0, bounding = 0, ambient = 0;
  uint32_t securebits = 0;
};

struct SeccompFilter {
  std::vector<uint8_t> insns;  // struct sock_filter[], 8 bytes each
  uint32_t flags = 0;          // SECCOMP_FILTER_FLAG_* it was installed with (LOG)
};

// What is task-wide.
struct ProcessState {
  bool saved = false;  // false: an image from before this state was saved (the stub's stays)
  std::vector<Rlimit> rlimits;  // kNumRlimits, by resource number
  IntervalTimer itimers[3];     // ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF
  std::vector<PosixTimer> posix_timers;
  std::vector<std::vector<uint8_t>> shared_signals;  // siginfo_t, queue order
  int32_t oom_score_adj = 0;
  bool child_subreaper = false;
  bool no_new_privs = false;
  std::vector<SeccompFilter> seccomp;  // oldest first (the order they were installed in)
  Capabilities caps;
};

// What each thread has of its own.
struct ThreadProcessState {
  int32_t nice = 0;
  uint32_t policy = 0;  // SCHED_*, with SCHED_RESET_ON_FORK
  uint32_t rt_priority = 0;
  std::vector<uint64_t> affinity;  // CPU mask words
  uint32_t pdeath_signal = 0;
  std::vector<std::vector<uint8_t>> pending_signals;  // siginfo_t, queue order
};

// Dump: every thread stopped, `scratch` a page mapped in the task. others[i] is t.threads[i].
void collect_process_state(SeizedTask& main, RemoteSyscalls& rs, std::vector<std::unique_ptr<SeizedTask>>& others,
                           uint64_t gadget, uint64_t scratch, TaskImage& t);

// Restore, once the saved threads exist (threads[i] is img.threads[i]), before the scratch area goes.
void restore_process_state(Morph& m, const TaskImage& img, std::vector<std::unique_ptr<SeizedTask>>& threads, uint64_t gadget);

}  // namespace cryopod
