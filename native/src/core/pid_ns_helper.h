// The helper that sets the next PID in a PID namespace that is not ours (a restore pod's container):
// /proc/sys/kernel/ns_last_pid acts on the writer's own PID namespace, so a process of ours must live in
// the tenant's for the time of a restore's clones. It is made to be worth nothing to the tenant:
//
//   what it keeps             why
//   CAP_CHECKPOINT_RESTORE    writing ns_last_pid needs it (or CAP_SYS_ADMIN) over the namespace; every
//                             other capability is dropped from all five sets, the bounding set included
//   no_new_privs              it never gains anything back
//   not dumpable              its /proc entries are root's: no tenant process reads its memory, fds,
//                             environment or maps, or ptraces it
//   an empty root             it leaves the host's mount namespace for one of its own whose only mount is
//                             an empty tmpfs (pivot_root, old root detached): /proc/<it>/root and cwd show
//                             the tenant nothing of the host
//   one fd                    the ns_last_pid it opened before it left (besides its two pipe ends)
//   a short life              it exits when its pipe closes (finish(), before any restored task runs),
//                             and is killed then too; its parent is ours to the end, so it is never
//                             the child (nor the zombie) of the tenant's init
//
// It is still a PID in the tenant's namespace for that time, so a process there with CAP_KILL can kill
// it: the restore then fails (EIO), nothing else (docs/security.md).
#pragma once

#include <sys/types.h>

namespace cryopod {

class PidNamespaceHelper {
 public:
  // Forks the helper into the PID namespace of `member` (a PID in ours) at an ID from `spare` up.
  PidNamespaceHelper(pid_t member, int spare);
  ~PidNamespaceHelper();
  PidNamespaceHelper(const PidNamespaceHelper&) = delete;
  PidNamespaceHelper& operator=(const PidNamespaceHelper&) = delete;

  // ns_last_pid = want - 1 in that namespace: the next task created there gets `want` if it is free.
  void set_next(int want);
  // Ends it (idempotent).
  void finish();
  // Its PID in our namespace (-1 once finished).
  pid_t pid() const { return pid_; }

 private:
  void reap();

  pid_t pid_ = -1;
  pid_t mid_ = -1;  // our child that forked it and stays its parent (see the constructor)
  int to_ = -1, from_ = -1;
};

}  // namespace cryopod
