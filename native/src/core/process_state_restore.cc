// Restore of the process state in process_state.h, inside the morphed stub, by remote syscalls the
// task makes itself: the kernel checks its rights, not ours, so nothing is put back with more privilege
// than the stub has. What the stub may not have fails the restore, naming it.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <cstring>

#include "errors.h"
#include "proc.h"
#include "process_state.h"
#include "remote_syscall.h"
#include "restore_morph.h"
#include "seized_task.h"
#include "task_model.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#endif

namespace cryopod {

namespace {

// Scratch offsets of this stage (the morph's own use the first 4 KiB).
constexpr uint64_t kArgOff = 8192, kBlobOff = 16384;

const char* const kRlimitNames[kNumRlimits] = {"RLIMIT_CPU",   "RLIMIT_FSIZE",   "RLIMIT_DATA",   "RLIMIT_STACK",
                                               "RLIMIT_CORE",  "RLIMIT_RSS",     "RLIMIT_NPROC",  "RLIMIT_NOFILE",
                                               "RLIMIT_MEMLOCK", "RLIMIT_AS",    "RLIMIT_LOCKS",  "RLIMIT_SIGPENDING",
                                               "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME"};

void must_ok(long r, const std::string& what) {
  if (r < 0) throw_errno("in the restored task: " + what, (int)-r);
}

void restore_sched(Morph& m, RemoteSyscalls& rs, int tid, const ThreadProcessState& ps) {
  std::string thread = "thread " + std::to_string(tid);
  if (!ps.affinity.empty()) {
    uint64_t mask = m.put(kArgOff, ps.affinity.data(), ps.affinity.size() * 8);
    long r = rs.call(SYS_sched_setaffinity, 0, ps.affinity.size() * 8, mask);
    if (r == -EINVAL) throw CoreError("EINVAL", thread + ": none of the CPUs of its saved affinity exists here");
    must_ok(r, "sched_setaffinity of " + thread);
  }
  int32_t prio = (int32_t)ps.rt_priority;
  must_ok(rs.call(SYS_sched_setscheduler, 0, ps.policy, m.put(kArgOff, &prio, sizeof prio)),
          "sched_setscheduler(" + std::to_string(ps.policy & ~SCHED_RESET_ON_FORK) + ", " + std::to_string(prio) + ") of " + thread);
  long r = rs.call(SYS_setpriority, PRIO_PROCESS, 0, (uint64_t)(int64_t)ps.nice);
  if (r == -EACCES || r == -EPERM)
    throw CoreError("EPERM", thread + ": nice " + std::to_string(ps.nice) + " is above what the restore stub may set (CAP_SYS_NICE or RLIMIT_NICE)");
  must_ok(r, "setpriority of " + thread);
}

void restore_rlimits(Morph& m, const ProcessState& st) {
  for (int res = 0; res < (int)st.rlimits.size() && res < kNumRlimits; ++res) {
    const Rlimit& want = st.rlimits[res];
    long r = m.rs().call(SYS_prlimit64, 0, (uint64_t)res, m.put(kArgOff, &want, sizeof want), 0);
    if (r == -EPERM) {
      Rlimit now{};
      m.rs().call(SYS_prlimit64, 0, (uint64_t)res, 0, m.scratch() + kArgOff + 64);
      remote_read(m.task().pid(), m.scratch() + kArgOff + 64, &now, sizeof now);
      throw CoreError("EPERM", std::string(kRlimitNames[res]) + ": the saved hard limit " + std::to_string(want.max) +
                                   " is above the restore stub's " + std::to_string(now.max) + " (raising it needs CAP_SYS_RESOURCE)");
    }
    must_ok(r, std::string("prlimit64 ") + kRlimitNames[res]);
  }
}

struct KernelItimerval {
  int64_t interval_sec, interval_usec, value_sec, value_usec;
};
struct KernelItimerspec {
  int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};
// struct sigevent as the kernel reads it (64 bytes): value, signo, notify, then the thread ID.
struct KernelSigevent {
  uint64_t value;
  int32_t signo, notify, tid;
  int32_t pad[11];
};

void restore_timers(Morph& m, const TaskImage& img, int own_pid) {
  const ProcessState& st = img.state;
  for (int which = 0; which < 3; ++which) {
    const IntervalTimer& t = st.itimers[which];
    if (t.interval_us == 0 && t.value_us == 0) continue;
    // An expired ITIMER_REAL reads 0 left until its SIGALRM is taken (the kernel re-arms it then); that
    // signal is queued again below, and the next expiry is one interval on.
    uint64_t left = t.value_us != 0 ? t.value_us : t.interval_us;
    KernelItimerval v{(int64_t)(t.interval_us / 1000000), (int64_t)(t.interval_us % 1000000), (int64_t)(left / 1000000),
                      (int64_t)(left % 1000000)};
    must_ok(m.rs().call(SYS_setitimer, (uint64_t)which, m.put(kArgOff, &v, sizeof v), 0), "setitimer " + std::to_string(which));
  }
  if (st.posix_timers.empty()) return;
  // Each timer gets its saved ID (the program holds it): the kernel takes the one written at the
  // timer_t address while this mode is on (Linux 6.17+).
  long on = m.rs().call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
  if (on < 0) throw CoreError("EUNSUPPORTED", "POSIX timers need their IDs back and this kernel lacks PR_TIMER_CREATE_RESTORE_IDS");
  for (const PosixTimer& pt : st.posix_timers) {
    std::string name = "POSIX timer " + std::to_string(pt.id);
    KernelSigevent ev{};
    ev.value = pt.sigval;
    ev.signo = pt.signo;
    ev.notify = pt.notify;
    ev.tid = pt.notify_tid == img.pid ? own_pid : pt.notify_tid;  // a new PID for a single-threaded task
    uint64_t evp = m.put(kArgOff, &ev, sizeof ev);
    int32_t id = pt.id;
    uint64_t idp = m.put(kArgOff + sizeof ev, &id, sizeof id);
    must_ok(m.rs().call(SYS_timer_create, (uint64_t)pt.clock, evp, idp), "timer_create of " + name);
    remote_read(m.task().pid(), idp, &id, sizeof id);
    if (id != pt.id) throw CoreError("EIO", name + " came back as " + std::to_string(id));
    if (pt.value_ns == 0) continue;  // disarmed
    KernelItimerspec v{(int64_t)(pt.interval_ns / 1000000000), (int64_t)(pt.interval_ns % 1000000000),
                       (int64_t)(pt.value_ns / 1000000000), (int64_t)(pt.value_ns % 1000000000)};
    must_ok(m.rs().call(SYS_timer_settime, (uint64_t)pt.id, 0, m.put(kArgOff, &v, sizeof v), 0), "timer_settime of " + name);
  }
  m.rs().call(SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
}

// The task writes its own oom_score_adj: lowering it needs CAP_SYS_RESOURCE in the task, not in us.
void restore_oom_score_adj(Morph& m, int32_t value) {
  auto& rs = m.rs();
  long fd = rs.call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(kArgOff, "/proc/self/oom_score_adj"), O_WRONLY | O_CLOEXEC, 0);
  must_ok(fd, "open /proc/self/oom_score_adj");
  std::string text = std::to_string(value);
  long w = rs.call(SYS_write, (uint64_t)fd, m.put(kArgOff + 64, text.data(), text.size()), text.size());
  rs.call(SYS_close, (uint64_t)fd);
  if (w == -EACCES || w == -EPERM)
    throw CoreError("EPERM", "oom_score_adj " + text + " is below what the restore stub may set (CAP_SYS_RESOURCE)");
  must_ok(w, "write oom_score_adj " + text);
}

// Signals go back in their queue order, each sent by the task to itself (so any si_code is allowed).
void queue_signals(Morph& m, RemoteSyscalls& rs, const std::vector<std::vector<uint8_t>>& infos, bool shared) {
  if (infos.empty()) return;
  long pid = rs.call(SYS_getpid), tid = rs.call(SYS_gettid);
  for (const auto& info : infos) {
    int32_t signo = 0;
    std::memcpy(&signo, info.data(), sizeof signo);
    uint64_t at = m.put(kArgOff, info.data(), info.size());
    long r = shared ? rs.call(SYS_rt_sigqueueinfo, (uint64_t)pid, (uint64_t)signo, at)
                    : rs.call(SYS_rt_tgsigqueueinfo, (uint64_t)pid, (uint64_t)tid, (uint64_t)signo, at);
    must_ok(r, "queue pending signal " + std::to_string(signo));
  }
}

void restore_seccomp(Morph& m, const ProcessState& st, std::vector<std::unique_ptr<SeizedTask>>& threads) {
  if (st.no_new_privs) must_ok(m.rs().call(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)");
  if (st.seccomp.empty()) return;
  // From here on the filters apply to what we still do in the task: suspend them for us.
  m.task().suspend_seccomp();
  for (auto& th : threads) th->suspend_seccomp();
  for (size_t i = 0; i < st.seccomp.size(); ++i) {
    const SeccompFilter& f = st.seccomp[i];
    uint64_t insns = m.put(kBlobOff, f.insns.data(), f.insns.size());
    struct {
      uint16_t len;
      uint16_t pad[3];
      uint64_t filter;
    } prog{(uint16_t)(f.insns.size() / 8), {0, 0, 0}, insns};
    uint64_t flags = (f.flags & SECCOMP_FILTER_FLAG_LOG) | SECCOMP_FILTER_FLAG_TSYNC;  // every thread
    long r = m.rs().call(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, m.put(kArgOff, &prog, sizeof prog));
    if (r == -EACCES)
      throw CoreError("EPERM", "seccomp filter " + std::to_string(i + 1) + " of " + std::to_string(st.seccomp.size()) +
                                   ": the task had no no_new_privs and the restore stub lacks CAP_SYS_ADMIN to install it");
    if (r > 0) throw CoreError("EIO", "seccomp filter " + std::to_string(i + 1) + " could not be synchronized to thread " + std::to_string(r));
    must_ok(r, "seccomp(SECCOMP_SET_MODE_FILTER) " + std::to_string(i + 1));
  }
}

std::string cap_list(uint64_t bits) {
  std::string out;
  for (int c = 0; c < 64; ++c)
    if (bits & (1ULL << c)) out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

void capset(Morph& m, uint64_t eff, uint64_t prm, uint64_t inh, const std::string& what) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {{(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
                                    {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)}};
  uint64_t h = m.put(kArgOff, &hdr, sizeof hdr), d = m.put(kArgOff + 64, data, sizeof data);
  must_ok(m.rs().call(SYS_capset, h, d), "capset (" + what + ")");
}

// The saved capabilities, never more than the stub has: a capability it lacks fails the restore.
void restore_caps(Morph& m, const Capabilities& want) {
  std::string status = read_text("/proc/" + std::to_string(m.task().pid()) + "/status");
  auto field = [&](const char* key) {
    size_t at = status.find(std::string("\n") + key + ":");
    if (at == std::string::npos) throw CoreError("EPROTO", std::string("/proc status has no ") + key);
    return std::stoull(status.substr(at + std::strlen(key) + 2), nullptr, 16);
  };
  Capabilities have{field("CapInh"), field("CapPrm"), field("CapEff"), field("CapBnd"), field("CapAmb"), 0};
  have.securebits = (uint32_t)m.rs().call(SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0);
  uint64_t over = (want.permitted & ~have.permitted) | (want.bounding & ~have.bounding);
  if (over) throw CoreError("EPERM", "the task had capabilities the restore stub lacks (numbers " + cap_list(over) + "): never more than the stub has");
  if (want.permitted == have.permitted && want.effective == have.effective && want.inheritable == have.inheritable &&
      want.bounding == have.bounding && want.ambient == have.ambient && want.securebits == have.securebits)
    return;
  // Inheritable first (ambient needs it), then ambient, bounding set and securebits while we still
  // hold CAP_SETPCAP, and the final sets last.
  capset(m, have.effective, have.permitted, want.inheritable | have.inheritable, "inheritable");
  m.rs().call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  for (int c = 0; c < 64; ++c)
    if (want.ambient & (1ULL << c))
      must_ok(m.rs().call(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, (uint64_t)c, 0, 0), "raise ambient capability " + std::to_string(c));
  for (int c = 0; c < 64; ++c)
    if ((have.bounding & ~want.bounding) & (1ULL << c))
      must_ok(m.rs().call(SYS_prctl, PR_CAPBSET_DROP, (uint64_t)c, 0, 0, 0), "drop capability " + std::to_string(c) + " from the bounding set");
  if (want.securebits != have.securebits)
    must_ok(m.rs().call(SYS_prctl, PR_SET_SECUREBITS, want.securebits, 0, 0, 0), "prctl(PR_SET_SECUREBITS)");
  capset(m, want.effective, want.permitted, want.inheritable, "saved sets");
}

}  // namespace

void restore_process_state(Morph& m, const TaskImage& img, std::vector<std::unique_ptr<SeizedTask>>& threads, uint64_t gadget) {
  const ProcessState& st = img.state;
  if (!st.saved) return;
  restore_sched(m, m.rs(), img.pid, img.main.ps);
  for (size_t i = 0; i < threads.size(); ++i) {
    RemoteSyscalls trs(*threads[i], gadget);
    restore_sched(m, trs, img.threads[i].tid, img.threads[i].ps);
  }
  restore_rlimits(m, st);
  long own_pid = m.rs().call(SYS_getpid);
  restore_timers(m, img, (int)own_pid);
  if (st.child_subreaper) must_ok(m.rs().call(SYS_prctl, PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)");
  must_ok(m.rs().call(SYS_personality, img.personality), "personality");
  restore_oom_score_adj(m, st.oom_score_adj);
  queue_signals(m, m.rs(), st.shared_signals, true);
  queue_signals(m, m.rs(), img.main.ps.pending_signals, false);
  for (size_t i = 0; i < threads.size(); ++i) {
    RemoteSyscalls trs(*threads[i], gadget);
    queue_signals(m, trs, img.threads[i].ps.pending_signals, false);
  }
  restore_seccomp(m, st, threads);
  restore_caps(m, st.caps);
  // Last: a change of credentials clears the parent-death signal.
  if (img.main.ps.pdeath_signal) must_ok(m.rs().call(SYS_prctl, PR_SET_PDEATHSIG, img.main.ps.pdeath_signal, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)");
  for (size_t i = 0; i < threads.size(); ++i)
    if (img.threads[i].ps.pdeath_signal) {
      RemoteSyscalls trs(*threads[i], gadget);
      must_ok(trs.call(SYS_prctl, PR_SET_PDEATHSIG, img.threads[i].ps.pdeath_signal, 0, 0, 0), "prctl(PR_SET_PDEATHSIG) of a thread");
    }
}

}  // namespace cryopod
