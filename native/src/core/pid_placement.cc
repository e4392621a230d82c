#include "pid_placement.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "clone3.h"
#include "errors.h"
#include "pid_namespace.h"
#include "pid_ns_helper.h"

namespace cryopod {

PidPlacement::PidPlacement(pid_t member, int spare) {
  if (in_our_pid_namespace(member)) return;
  if (geteuid() != 0) throw CoreError("EPERM", "restoring into another PID namespace (a container's) needs root");
  helper_ = std::make_unique<PidNamespaceHelper>(member, spare);
  own_ns_ = false;
}

PidPlacement::~PidPlacement() { finish(); }

void PidPlacement::finish() {
  if (helper_) helper_->finish();
}

void PidPlacement::set_next(int want) {
  if (!helper_) throw CoreError("EINVAL", "no PID namespace helper");
  helper_->set_next(want);
}

pid_t PidPlacement::clone_with_id(RemoteSyscalls& rs, uint64_t slot, uint64_t flags, int want, const std::string& what,
                                  const char* taken_code) {
  pid_t caller = rs.task().pid();
  CloneArgs ca{};
  ca.flags = flags;
  ca.exit_signal = (flags & CLONE_THREAD) ? 0 : SIGCHLD;
  if (own_namespace()) {
    pid_t tid = want;
    remote_write(caller, slot, &tid, sizeof tid);
    ca.set_tid = slot;
    ca.set_tid_size = 1;
  } else {
    set_next(want);
  }
  remote_write(caller, slot + 64, &ca, sizeof ca);
  long got = rs.call(SYS_clone3, slot + 64, sizeof ca);
  auto taken = [&]() {
    return CoreError(taken_code, what + " cannot be restored: ID " + std::to_string(want) +
                                     " is in use (is the checkpointed process still running?)");
  };
  if (got == -EEXIST) throw taken();
  if (got < 0) throw_errno("in the restored task: clone3 of " + what, (int)-got);
  pid_t created = rs.task().last_created();
  if (created <= 0) throw CoreError("EREMOTE", "clone3 of " + what + " reported no new task");
  if (got != want) {
    // ns_last_pid only says where to start looking: the ID was taken, the next free one came out.
    kill(created, SIGKILL);
    throw taken();
  }
  return created;
}

}  // namespace cryopod
