// How a restore gives each task and thread the ID it had.
//
// Every task or thread is created by a remote clone3 run in its restored parent (or in its process's
// main thread), so that it inherits what it must. Its ID is set two ways:
//   - in our own PID namespace (local mode): clone3's set_tid, which needs CAP_CHECKPOINT_RESTORE in
//     the caller, and the caller is a restored task running with our credentials;
//   - in another one (a container's, or the new one a local restore of a container's tree makes):
//     the restored tasks run with their container's credentials, which lack that capability, so a
//     helper of ours with it (pid_ns_helper.h: nothing else), forked into that namespace, writes /proc/sys/kernel/ns_last_pid (which
//     acts on the writer's namespace) just before each clone, and the result is checked. Nothing
//     else forks in a restore stub's namespace while it is being restored.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "pid_ns_helper.h"
#include "remote_syscall.h"

namespace cryopod {

class PidPlacement {
 public:
  // For tasks living in the PID namespace of `member` (a PID in ours). `spare`: an ID in that namespace
  // no task or thread of the image uses, for the helper.
  PidPlacement(pid_t member, int spare);
  ~PidPlacement();
  PidPlacement(const PidPlacement&) = delete;
  PidPlacement& operator=(const PidPlacement&) = delete;

  // Runs clone3 with `flags` in the task behind `rs` (stopped, traced with PTRACE_O_TRACEFORK/CLONE),
  // using 128 bytes of its memory at `slot`, so that the new task or thread gets `want` as the caller
  // sees IDs. Returns its PID in our namespace; it starts stopped and traced. An ID in use fails with
  // `taken_code`, naming `what`.
  pid_t clone_with_id(RemoteSyscalls& rs, uint64_t slot, uint64_t flags, int want, const std::string& what,
                      const char* taken_code);

  bool own_namespace() const { return own_ns_; }

  // Ends the helper (also done by the destructor): call it before any restored task runs, so that no
  // copy of the restorer lives among them.
  void finish();

 private:
  void set_next(int want);

  bool own_ns_ = true;
  std::unique_ptr<PidNamespaceHelper> helper_;  // in another namespace only
};

}  // namespace cryopod
