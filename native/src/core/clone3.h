// clone3 as the restore uses it: a child with a chosen ID (set_tid) or in a new PID namespace, from code
// that runs after a fork of a multi-threaded process (async-signal-safe: a raw syscall, no allocation).
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

namespace cryopod {

// struct clone_args (include/uapi/linux/sched.h), up to set_tid_size.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
};

// fork() semantics (SIGCHLD to the parent, 0 in the child); `id` > 0: that ID in the innermost PID
// namespace of the child. Returns -1 with errno on failure (EEXIST: the ID is taken).
inline pid_t clone3_fork(uint64_t flags, pid_t id) {
  CloneArgs ca{};
  ca.flags = flags;
  ca.exit_signal = SIGCHLD;
  if (id > 0) {
    ca.set_tid = (uint64_t)(uintptr_t)&id;
    ca.set_tid_size = 1;
  }
  return (pid_t)syscall(SYS_clone3, &ca, sizeof ca);
}

}  // namespace cryopod
