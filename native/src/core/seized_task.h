// A task stopped under ptrace for as long as this object lives (RAII, after CRIU's err_cure discipline).
//
//   SeizedTask t(pid);        PTRACE_SEIZE + PTRACE_INTERRUPT, waits for the stop
//   ...read state, run remote syscalls (remote_syscall.h)...
//   t.kill_and_reap() / t.detach()
//   ~SeizedTask()             if still attached: puts back the registers and signal mask it changed,
//                             then detaches, so the task runs on exactly as before, never left stopped.
//
// ptrace requests must come from the thread that seized the task: create, use and destroy this object on
// one thread (the N-API worker's).
#pragma once

#include <sys/types.h>
#include <sys/user.h>

#include <chrono>
#include <cstdint>
#include <vector>

namespace cryopod {

class SeizedTask {
 public:
  // options: extra PTRACE_O_* flags besides TRACESYSGOOD (a restore adds TRACECLONE).
  explicit SeizedTask(pid_t pid, unsigned options = 0);
  // Two steps, for tasks in a frozen cgroup: seize_and_interrupt() while frozen (it cannot stop yet),
  // thaw, then construct with Interrupted to wait for the stop.
  static void seize_and_interrupt(pid_t pid);
  struct Interrupted {};
  SeizedTask(pid_t pid, Interrupted);
  // Adopts a thread that was auto-attached at clone (PTRACE_O_TRACECLONE): waits for its first stop.
  struct Adopt {};
  SeizedTask(pid_t tid, Adopt);
  ~SeizedTask();
  SeizedTask(const SeizedTask&) = delete;
  SeizedTask& operator=(const SeizedTask&) = delete;

  pid_t pid() const { return pid_; }

  user_regs_struct regs() const;
  void set_regs(const user_regs_struct& r);
  std::vector<uint8_t> xsave() const;
  void set_xsave(const std::vector<uint8_t>& area);
  uint64_t signal_mask() const;
  void set_signal_mask(uint64_t mask);

  // The registers and signal mask the task had when it was seized.
  const user_regs_struct& original_regs() const { return orig_regs_; }
  uint64_t original_sigmask() const { return orig_mask_; }

  // Resume with PTRACE_SYSCALL and wait for the next syscall stop; throws if the task dies.
  void step_to_syscall_stop();

  // Let the task run freely (injected code); collect its next stop with poll_stop() or wait_stop().
  void resume();
  // Non-blocking: true when the running task has stopped; *sig is the stop's signal. Throws if it died.
  bool poll_stop(int* sig);
  // Blocks until the running task stops; returns the stop's signal.
  int wait_stop();
  // Stops the running task with PTRACE_INTERRUPT.
  void interrupt();
  bool running() const { return running_; }

  // Kill the task while it is still stopped (it never runs again) and wait until it is gone.
  void kill_and_reap();
  // After the thread group was SIGKILLed: collect this thread's exit (a tracer must).
  void reap_after_kill();
  // Put back registers and signal mask (if changed) and detach: the task runs on.
  void detach();
  // Like detach(), but the task is left in a group stop (SIGSTOP queued before it runs a single
  // instruction): the caller then kills it once the images are safe, or SIGCONTs it if they are not.
  void detach_stopped();
  // Load new registers and signal mask and detach: the task runs on as someone else (restore).
  void release_with(const user_regs_struct& regs, uint64_t mask);

  // The registers and mask the task stopped with are not its own (a dead dumper left it parked in the
  // parasite): detach puts these back instead, with the same syscall restart handling.
  void adopt_original(const user_regs_struct& regs, uint64_t mask) {
    orig_regs_ = regs;
    orig_mask_ = mask;
    regs_changed_ = mask_changed_ = true;
  }

  // Puts back the registers and signal mask it changed (done by detach(); exposed so a check can read
  // what detach would load).
  void put_back() { restore_original_state(); }

  // Lets our remote syscalls and parasite pass the task's seccomp filters while we trace it
  // (PTRACE_O_SUSPEND_SECCOMP: needs CAP_SYS_ADMIN and no seccomp of our own). False if refused.
  bool suspend_seccomp();
  // Seconds between the stop and detach/kill (the downtime the task saw).
  double frozen_seconds() const;
  // The task or thread the last remote clone3 created, by its PID in our namespace (the call itself
  // returns it as the caller sees it, which differs inside a container's PID namespace). 0: none.
  pid_t last_created() const { return last_created_; }
  // The registers the task gets back once remote syscalls ran in it: the original ones, with a syscall
  // the stop had interrupted set up to run again (the remote calls consumed its restart state).
  user_regs_struct regs_to_put_back() const;

 private:
  void wait_for_stop(const char* what);
  void wait_exit();
  void restore_original_state();

  pid_t pid_;
  unsigned options_ = 0;  // PTRACE_O_* in effect
  bool attached_ = false;
  bool regs_changed_ = false;
  bool mask_changed_ = false;
  bool at_syscall_stop_ = false;
  pid_t last_created_ = 0;
  bool running_ = false;
  user_regs_struct orig_regs_{};
  uint64_t orig_mask_ = 0;
  std::chrono::steady_clock::time_point stopped_at_;
  double frozen_seconds_ = -1;
};

}  // namespace cryopod
