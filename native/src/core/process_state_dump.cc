// Dump of the process state in process_state.h: read while every thread is stopped, from /proc, from
// ptrace, from scheduler calls made here, and by remote syscalls for what only the task can tell.
#include <sys/ptrace.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "errors.h"
#include "proc.h"
#include "process_state.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "task_model.h"

namespace cryopod {

namespace {

std::string who(int pid) { return "pid " + std::to_string(pid); }

// "Key:\tvalue" of /proc/PID/task/TID/status, or "" when absent.
std::string status_field(const std::string& status, const std::string& key) {
  std::istringstream in(status);
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0) {
      size_t at = line.find_first_not_of(" \t", key.size() + 1);
      return at == std::string::npos ? "" : line.substr(at);
    }
  return "";
}

uint64_t hex_field(const std::string& status, const std::string& key) {
  std::string v = status_field(status, key);
  if (v.empty()) throw CoreError("EPROTO", "/proc status has no " + key);
  return std::stoull(v, nullptr, 16);
}

Capabilities caps_of(const std::string& status) {
  Capabilities c;
  c.inheritable = hex_field(status, "CapInh");
  c.permitted = hex_field(status, "CapPrm");
  c.effective = hex_field(status, "CapEff");
  c.bounding = hex_field(status, "CapBnd");
  c.ambient = hex_field(status, "CapAmb");
  return c;
}

bool same_caps(const Capabilities& a, const Capabilities& b) {
  return a.inheritable == b.inheritable && a.permitted == b.permitted && a.effective == b.effective &&
         a.bounding == b.bounding && a.ambient == b.ambient;
}

// Scheduling of one thread, read from here (no rights needed).
void read_sched(int pid, int tid, ThreadProcessState& ps) {
  int policy = sched_getscheduler(tid);
  if (policy < 0) throw_errno("sched_getscheduler " + who(tid));
  if ((policy & ~SCHED_RESET_ON_FORK) == 6 /* SCHED_DEADLINE */)
    throw CoreError("EUNSUPPORTED", "thread " + std::to_string(tid) + " of " + who(pid) + " runs under SCHED_DEADLINE, which is not saved");
  ps.policy = (uint32_t)policy;
  sched_param sp{};
  if (sched_getparam(tid, &sp) != 0) throw_errno("sched_getparam " + who(tid));
  ps.rt_priority = (uint32_t)sp.sched_priority;
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)tid);
  if (nice == -1 && errno != 0) throw_errno("getpriority " + who(tid));
  ps.nice = nice;
  std::vector<uint64_t> mask(16);  // 1024 CPUs
  for (;;) {
    long n = syscall(SYS_sched_getaffinity, tid, mask.size() * 8, mask.data());
    if (n > 0) {
      mask.resize((size_t)n / 8);
      break;
    }
    if (errno != EINVAL || mask.size() > 4096) throw_errno("sched_getaffinity " + who(tid));
    mask.resize(mask.size() * 2);
  }
  ps.affinity = mask;
}

// Signals queued for the thread (shared: for the whole process), read without dequeuing them.
std::vector<std::vector<uint8_t>> peek_signals(int tid, bool shared) {
  std::vector<std::vector<uint8_t>> out;
  uint8_t buf[32 * kSiginfoSize];
  for (;;) {
    __ptrace_peeksiginfo_args a{};
    a.off = out.size();
    a.flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0;
    a.nr = 32;
    long n = ptrace((enum __ptrace_request)PTRACE_PEEKSIGINFO, tid, &a, buf);
    if (n < 0) throw_errno("PTRACE_PEEKSIGINFO " + who(tid));
    if (n == 0) return out;
    for (long i = 0; i < n; ++i) out.emplace_back(buf + i * kSiginfoSize, buf + (i + 1) * kSiginfoSize);
    if (out.size() > kMaxPendingSignals)
      throw CoreError("EUNSUPPORTED", who(tid) + " has more than " + std::to_string(kMaxPendingSignals) + " pending signals");
  }
}

// The task's own view of a thread ID (its PID namespace), for SIGEV_THREAD_ID targets.
int inner_tid(int pid, int host_tid) {
  std::vector<int> ids = read_thread_status(pid, host_tid).ns_pid;
  return ids.empty() ? host_tid : ids.back();
}

// /proc/PID/timers lists every POSIX timer: ID, signal/sigev_value, notify kind/target, clock.
std::vector<PosixTimer> list_posix_timers(int pid) {
  std::vector<PosixTimer> timers;
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/timers"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("ID: ", 0) == 0) {
      if (timers.size() >= kMaxPosixTimers) throw CoreError("EUNSUPPORTED", who(pid) + " has too many POSIX timers");
      timers.emplace_back();
      timers.back().id = std::stoi(line.substr(4));
    } else if (timers.empty()) {
      continue;
    } else if (line.rfind("signal: ", 0) == 0) {
      size_t slash = line.find('/');
      timers.back().signo = std::stoi(line.substr(8));
      timers.back().sigval = std::stoull(line.substr(slash + 1), nullptr, 16);
    } else if (line.rfind("notify: ", 0) == 0) {
      std::string kind = line.substr(8, line.find('/') - 8);
      bool to_thread = line.find("/tid.") != std::string::npos;
      int target = std::stoi(line.substr(line.rfind('.') + 1));
      int notify = kind == "signal" ? SIGEV_SIGNAL : kind == "none" ? SIGEV_NONE : -1;
      if (notify < 0) throw CoreError("EUNSUPPORTED", who(pid) + ": POSIX timer " + std::to_string(timers.back().id) + " notifies by " + kind);
      if (to_thread) {
        notify |= SIGEV_THREAD_ID;
        timers.back().notify_tid = inner_tid(pid, target);
      }
      timers.back().notify = notify;
    } else if (line.rfind("ClockID: ", 0) == 0) {
      timers.back().clock = std::stoi(line.substr(9));
    }
  }
  return timers;
}

struct KernelItimerval {
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};
struct KernelItimerspec {
  int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

void read_timers(RemoteSyscalls& rs, int pid, uint64_t scratch, ProcessState& st) {
  for (int which = 0; which < 3; ++which) {
    rs.must("getitimer", SYS_getitimer, (uint64_t)which, scratch);
    KernelItimerval v{};
    remote_read(pid, scratch, &v, sizeof v);
    st.itimers[which] = IntervalTimer{(uint64_t)(v.interval_sec * 1000000 + v.interval_usec),
                                      (uint64_t)(v.value_sec * 1000000 + v.value_usec)};
  }
  st.posix_timers = list_posix_timers(pid);
  for (PosixTimer& pt : st.posix_timers) {
    rs.must("timer_gettime " + std::to_string(pt.id), SYS_timer_gettime, (uint64_t)pt.id, scratch);
    KernelItimerspec v{};
    remote_read(pid, scratch, &v, sizeof v);
    pt.interval_ns = (uint64_t)(v.interval_sec * 1000000000 + v.interval_nsec);
    pt.value_ns = (uint64_t)(v.value_sec * 1000000000 + v.value_nsec);
    pt.overrun = (uint32_t)rs.must("timer_getoverrun " + std::to_string(pt.id), SYS_timer_getoverrun, (uint64_t)pt.id);
  }
}

// Every filter of the thread's chain, oldest first (ptrace's index 0 is the first one installed).
std::vector<SeccompFilter> read_seccomp(int pid, int count) {
  if (count > (int)kMaxSeccompFilters) throw CoreError("EUNSUPPORTED", who(pid) + " has more than " + std::to_string(kMaxSeccompFilters) + " seccomp filters");
  std::vector<SeccompFilter> out;
  for (int index = 0; index < count; ++index) {
    long n = ptrace((enum __ptrace_request)PTRACE_SECCOMP_GET_FILTER, pid, (void*)(long)index, nullptr);
    if (n < 0) {
      if (errno == EPERM || errno == EACCES)
        throw CoreError("EPERM", who(pid) + " has seccomp filters and reading them needs CAP_SYS_ADMIN without seccomp of our own");
      throw_errno("PTRACE_SECCOMP_GET_FILTER " + who(pid));
    }
    if (n <= 0 || n > (long)kMaxSeccompInsns) throw CoreError("EPROTO", who(pid) + ": seccomp filter " + std::to_string(index) + " has " + std::to_string(n) + " instructions");
    SeccompFilter f;
    f.insns.resize((size_t)n * 8);
    if (ptrace((enum __ptrace_request)PTRACE_SECCOMP_GET_FILTER, pid, (void*)(long)index, f.insns.data()) != n)
      throw_errno("PTRACE_SECCOMP_GET_FILTER " + who(pid));
    __ptrace_seccomp_metadata md{};
    md.filter_off = (uint64_t)index;
    if (ptrace((enum __ptrace_request)PTRACE_SECCOMP_GET_METADATA, pid, (void*)sizeof md, &md) >= 0) f.flags = (uint32_t)md.flags;
    out.push_back(std::move(f));
  }
  return out;
}

// What every thread must share for the task-wide restore to be exact: seccomp chain and capabilities.
void check_threads_alike(int pid, const std::vector<std::unique_ptr<SeizedTask>>& others, const std::string& main_status) {
  for (const auto& th : others) {
    std::string s = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(th->pid()) + "/status");
    std::string name = "thread " + std::to_string(th->pid()) + " of " + who(pid);
    if (status_field(s, "Seccomp") != status_field(main_status, "Seccomp") ||
        status_field(s, "Seccomp_filters") != status_field(main_status, "Seccomp_filters"))
      throw CoreError("EUNSUPPORTED", name + " has other seccomp filters than the main thread (only one chain for all threads is saved)");
    if (!same_caps(caps_of(s), caps_of(main_status)))
      throw CoreError("EUNSUPPORTED", name + " has other capabilities than the main thread (only one set for all threads is saved)");
    if (status_field(s, "NoNewPrivs") != status_field(main_status, "NoNewPrivs"))
      throw CoreError("EUNSUPPORTED", name + " has another no_new_privs than the main thread");
  }
}

void thread_state(RemoteSyscalls& rs, int pid, int tid, uint64_t scratch, ThreadProcessState& ps) {
  read_sched(pid, tid, ps);
  rs.must("prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, scratch);
  int32_t sig = 0;
  remote_read(tid, scratch, &sig, sizeof sig);
  ps.pdeath_signal = (uint32_t)sig;
  ps.pending_signals = peek_signals(tid, false);
}

}  // namespace

void collect_process_state(SeizedTask& main, RemoteSyscalls& rs, std::vector<std::unique_ptr<SeizedTask>>& others,
                           uint64_t gadget, uint64_t scratch, TaskImage& t) {
  int pid = main.pid();
  ProcessState& st = t.state;
  std::string status = read_text("/proc/" + std::to_string(pid) + "/status");
  check_threads_alike(pid, others, status);
  int seccomp_mode = std::stoi("0" + status_field(status, "Seccomp"));
  if (seccomp_mode == SECCOMP_MODE_STRICT) throw CoreError("EUNSUPPORTED", who(pid) + " runs in seccomp strict mode, which cannot be restored");
  st.no_new_privs = status_field(status, "NoNewPrivs") == "1";
  st.caps = caps_of(status);
  st.caps.securebits = (uint32_t)rs.must("prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS);
  if (seccomp_mode == SECCOMP_MODE_FILTER) st.seccomp = read_seccomp(pid, std::stoi("0" + status_field(status, "Seccomp_filters")));
  st.oom_score_adj = std::stoi(read_text("/proc/" + std::to_string(pid) + "/oom_score_adj"));

  st.rlimits.resize(kNumRlimits);
  for (int r = 0; r < kNumRlimits; ++r) {
    rs.must("prlimit64 " + std::to_string(r), SYS_prlimit64, 0, (uint64_t)r, 0, scratch);
    remote_read(pid, scratch, &st.rlimits[r], sizeof(Rlimit));
  }
  read_timers(rs, pid, scratch, st);
  rs.must("prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, PR_GET_CHILD_SUBREAPER, scratch);
  int32_t subreaper = 0;
  remote_read(pid, scratch, &subreaper, sizeof subreaper);
  st.child_subreaper = subreaper != 0;
  st.shared_signals = peek_signals(pid, true);

  thread_state(rs, pid, pid, scratch, t.main.ps);
  for (size_t i = 0; i < others.size(); ++i) {
    RemoteSyscalls trs(*others[i], gadget);
    thread_state(trs, pid, others[i]->pid(), scratch, t.threads[i].ps);
  }
  st.saved = true;
}

}  // namespace cryopod
