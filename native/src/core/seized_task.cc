#include "seized_task.h"

#include <elf.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <cerrno>
#include <string>

#include "errors.h"

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#define PTRACE_SETSIGMASK 0x420b
#endif

namespace cryopod {

namespace {
// Kernel-internal restart codes a syscall interrupted by a stop leaves in rax (include/linux/errno.h).
constexpr long kERESTARTSYS = 512, kERESTARTNOINTR = 513, kERESTARTNOHAND = 514, kERESTART_RESTARTBLOCK = 516;
constexpr long kNR_restart_syscall = 219;
constexpr size_t kXsaveMax = 16384;

std::string who(pid_t pid) { return "pid " + std::to_string(pid); }
}  // namespace

void SeizedTask::seize_and_interrupt(pid_t pid) {
  if (ptrace(PTRACE_SEIZE, pid, nullptr, (void*)(long)PTRACE_O_TRACESYSGOOD) != 0) throw_errno("PTRACE_SEIZE " + who(pid));
  if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) {
    int e = errno;
    ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    throw_errno("PTRACE_INTERRUPT " + who(pid), e);
  }
}

SeizedTask::SeizedTask(pid_t pid, Interrupted) : SeizedTask(pid, Adopt{}) { options_ = PTRACE_O_TRACESYSGOOD; }

// Auto-attached threads inherit the options of the restore's seize (TRACESYSGOOD | TRACECLONE | EXITKILL).
SeizedTask::SeizedTask(pid_t tid, Adopt) : pid_(tid), options_(PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL) {
  attached_ = true;
  try {
    wait_for_stop("new thread");
    stopped_at_ = std::chrono::steady_clock::now();
    if (ptrace(PTRACE_GETREGS, tid, nullptr, &orig_regs_) != 0) throw_errno("PTRACE_GETREGS " + who(tid));
    if (ptrace((__ptrace_request)PTRACE_GETSIGMASK, tid, (void*)sizeof(uint64_t), &orig_mask_) != 0)
      throw_errno("PTRACE_GETSIGMASK " + who(tid));
  } catch (...) {
    ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    attached_ = false;
    throw;
  }
}

SeizedTask::SeizedTask(pid_t pid, unsigned options) : pid_(pid), options_(PTRACE_O_TRACESYSGOOD | options) {
  if (ptrace(PTRACE_SEIZE, pid, nullptr, (void*)(long)(PTRACE_O_TRACESYSGOOD | options)) != 0)
    throw_errno("PTRACE_SEIZE " + who(pid));
  attached_ = true;
  try {
    if (ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) throw_errno("PTRACE_INTERRUPT " + who(pid));
    wait_for_stop("interrupt");
    stopped_at_ = std::chrono::steady_clock::now();
    if (ptrace(PTRACE_GETREGS, pid, nullptr, &orig_regs_) != 0) throw_errno("PTRACE_GETREGS " + who(pid));
    if (ptrace((__ptrace_request)PTRACE_GETSIGMASK, pid, (void*)sizeof(uint64_t), &orig_mask_) != 0)
      throw_errno("PTRACE_GETSIGMASK " + who(pid));
  } catch (...) {
    ptrace(PTRACE_DETACH, pid, nullptr, nullptr);
    attached_ = false;
    throw;
  }
}

bool SeizedTask::suspend_seccomp() {
  if (options_ & PTRACE_O_SUSPEND_SECCOMP) return true;
  if (ptrace(PTRACE_SETOPTIONS, pid_, nullptr, (void*)(long)(options_ | PTRACE_O_SUSPEND_SECCOMP)) != 0) return false;
  options_ |= PTRACE_O_SUSPEND_SECCOMP;
  return true;
}

SeizedTask::~SeizedTask() {
  if (!attached_) return;
  try {
    interrupt();
    detach();
  } catch (...) {
    // A destructor must not throw; the task is detached below in any case.
    ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
  }
}

// Waits for the interrupt stop. A signal-delivery stop that comes first is passed on to the task (the
// interrupt stays pending and is reported after it), so no signal is lost or delayed for good.
void SeizedTask::wait_for_stop(const char* what) {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno(std::string("waitpid (") + what + ") " + who(pid_));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      attached_ = false;
      throw CoreError("ESRCH", who(pid_) + " exited while being stopped");
    }
    if (!WIFSTOPPED(status)) continue;
    int event = status >> 16;
    if (event == PTRACE_EVENT_STOP) return;  // interrupt stop, or group stop of a stopped task
    int sig = WSTOPSIG(status);
    if (event == 0 && sig != (SIGTRAP | 0x80)) {
      // Signal-delivery stop: deliver it and keep waiting for our interrupt.
      if (ptrace(PTRACE_CONT, pid_, nullptr, (void*)(long)sig) != 0) throw_errno("PTRACE_CONT " + who(pid_));
      continue;
    }
    if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_CONT " + who(pid_));
  }
}

user_regs_struct SeizedTask::regs() const {
  user_regs_struct r{};
  if (ptrace(PTRACE_GETREGS, pid_, nullptr, &r) != 0) throw_errno("PTRACE_GETREGS " + who(pid_));
  return r;
}

void SeizedTask::set_regs(const user_regs_struct& r) {
  regs_changed_ = true;
  if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0) throw_errno("PTRACE_SETREGS " + who(pid_));
}

std::vector<uint8_t> SeizedTask::xsave() const {
  std::vector<uint8_t> buf(kXsaveMax);
  iovec iov{buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, pid_, (void*)NT_X86_XSTATE, &iov) != 0)
    throw_errno("PTRACE_GETREGSET(NT_X86_XSTATE) " + who(pid_));
  buf.resize(iov.iov_len);
  return buf;
}

void SeizedTask::set_xsave(const std::vector<uint8_t>& area) {
  std::vector<uint8_t> copy(area);
  iovec iov{copy.data(), copy.size()};
  if (ptrace(PTRACE_SETREGSET, pid_, (void*)NT_X86_XSTATE, &iov) != 0)
    throw_errno("PTRACE_SETREGSET(NT_X86_XSTATE) " + who(pid_));
}

uint64_t SeizedTask::signal_mask() const {
  uint64_t m = 0;
  if (ptrace((__ptrace_request)PTRACE_GETSIGMASK, pid_, (void*)sizeof m, &m) != 0)
    throw_errno("PTRACE_GETSIGMASK " + who(pid_));
  return m;
}

void SeizedTask::set_signal_mask(uint64_t mask) {
  mask_changed_ = true;
  if (ptrace((__ptrace_request)PTRACE_SETSIGMASK, pid_, (void*)sizeof mask, &mask) != 0)
    throw_errno("PTRACE_SETSIGMASK " + who(pid_));
}

void SeizedTask::step_to_syscall_stop() {
  last_created_ = 0;
  if (ptrace(PTRACE_SYSCALL, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_SYSCALL " + who(pid_));
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, __WALL);
    if (r < 0) {
      if (errno == EINTR) continue;
      throw_errno("waitpid (syscall) " + who(pid_));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      attached_ = false;
      throw CoreError("ESRCH", who(pid_) + " died during a remote system call");
    }
    if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80)) {
      at_syscall_stop_ = true;
      running_ = false;
      return;
    }
    if (WIFSTOPPED(status) && ((status >> 16) == PTRACE_EVENT_CLONE || (status >> 16) == PTRACE_EVENT_FORK)) {
      // A remote clone3: the new task is reported here, the call's result at the exit stop.
      unsigned long created = 0;
      if (ptrace(PTRACE_GETEVENTMSG, pid_, nullptr, &created) != 0) throw_errno("PTRACE_GETEVENTMSG " + who(pid_));
      last_created_ = (pid_t)created;
      if (ptrace(PTRACE_SYSCALL, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_SYSCALL " + who(pid_));
      continue;
    }
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) {
      // A PTRACE_INTERRUPT still pending from a cure (the task had stopped on its own first): it fires
      // before the syscall instruction runs; go on to the syscall stop.
      if (ptrace(PTRACE_SYSCALL, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_SYSCALL " + who(pid_));
      continue;
    }
    // Anything else (a fault in the injected code, an unexpected signal) means the remote call went wrong.
    throw CoreError("EREMOTE", who(pid_) + " stopped with signal " + std::to_string(WSTOPSIG(status)) +
                                   " (event " + std::to_string(status >> 16) + ", rip " +
                                   std::to_string(regs().rip) + ") during a remote system call");
  }
}

void SeizedTask::resume() {
  if (ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_CONT " + who(pid_));
  running_ = true;
  at_syscall_stop_ = false;
}

bool SeizedTask::poll_stop(int* sig) {
  if (!running_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, __WALL | WNOHANG);
  if (r == 0) return false;
  if (r < 0) throw_errno("waitpid " + who(pid_));
  if (WIFEXITED(status) || WIFSIGNALED(status)) {
    attached_ = running_ = false;
    throw CoreError("ESRCH", who(pid_) + " died while running injected code");
  }
  running_ = false;
  if (sig) *sig = (status >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(status);
  return true;
}

int SeizedTask::wait_stop() {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno("waitpid " + who(pid_));
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
      attached_ = running_ = false;
      throw CoreError("ESRCH", who(pid_) + " died while running injected code");
    }
    running_ = false;
    return (status >> 16) == PTRACE_EVENT_STOP ? 0 : WSTOPSIG(status);
  }
}

void SeizedTask::interrupt() {
  if (!running_) return;
  if (ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) != 0) throw_errno("PTRACE_INTERRUPT " + who(pid_));
  wait_stop();
}

// After remote syscalls the task sits in a syscall-exit stop, not in the signal path where the kernel
// would have restarted the syscall it was interrupted in. So do what the kernel does when no handler
// runs: re-execute the syscall (or restart_syscall for a restart block, which nothing here touched).
user_regs_struct SeizedTask::regs_to_put_back() const {
  user_regs_struct r = orig_regs_;
  if (at_syscall_stop_ && (long)r.orig_rax >= 0) {
    long rax = (long)r.rax;
    if (rax == -kERESTARTSYS || rax == -kERESTARTNOINTR || rax == -kERESTARTNOHAND) {
      r.rax = r.orig_rax;
      r.rip -= 2;
    } else if (rax == -kERESTART_RESTARTBLOCK) {
      r.rax = kNR_restart_syscall;
      r.rip -= 2;
    }
    r.orig_rax = (unsigned long long)-1;
  }
  return r;
}

void SeizedTask::restore_original_state() {
  if (regs_changed_) {
    user_regs_struct r = regs_to_put_back();
    if (ptrace(PTRACE_SETREGS, pid_, nullptr, &r) != 0) throw_errno("PTRACE_SETREGS (restore) " + who(pid_));
    regs_changed_ = false;
  }
  if (mask_changed_) {
    uint64_t m = orig_mask_;
    if (ptrace((__ptrace_request)PTRACE_SETSIGMASK, pid_, (void*)sizeof m, &m) != 0)
      throw_errno("PTRACE_SETSIGMASK (restore) " + who(pid_));
    mask_changed_ = false;
  }
}

void SeizedTask::detach() {
  if (!attached_) return;
  restore_original_state();
  frozen_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at_).count();
  if (ptrace(PTRACE_DETACH, pid_, nullptr, nullptr) != 0) {
    int e = errno;
    attached_ = false;
    throw_errno("PTRACE_DETACH " + who(pid_), e);
  }
  attached_ = false;
}

void SeizedTask::detach_stopped() {
  if (!attached_) return;
  restore_original_state();
  if (kill(pid_, SIGSTOP) != 0) throw_errno("kill(SIGSTOP) " + who(pid_));
  detach();
}

void SeizedTask::release_with(const user_regs_struct& regs, uint64_t mask) {
  set_regs(regs);
  set_signal_mask(mask);
  regs_changed_ = mask_changed_ = false;  // these are the task's registers now: detach keeps them
  detach();
}

// Waits until the (killed) task's exit is reported to us, its tracer.
void SeizedTask::wait_exit() {
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
  }
  attached_ = false;
}

void SeizedTask::reap_after_kill() {
  if (attached_) wait_exit();
}

void SeizedTask::kill_and_reap() {
  if (!attached_) return;
  frozen_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at_).count();
  kill(pid_, SIGKILL);
  wait_exit();  // the tracer sees the exit; the task's parent (not us, in general) reaps it
}

double SeizedTask::frozen_seconds() const {
  if (frozen_seconds_ >= 0) return frozen_seconds_;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped_at_).count();
}

}  // namespace cryopod
