// Freezing a cgroup (a pod's or a container's) so that every task in it stops at once, for a
// consistent snapshot: cgroup v1 `freezer.state` (FROZEN/THAWED) or v2 `cgroup.freeze` (1/0, with
// `frozen 1` in cgroup.events once done). The destructor always thaws: a failed checkpoint never
// leaves a pod frozen.
//
// With ptrace: PTRACE_SEIZE works on a frozen task and PTRACE_INTERRUPT is queued; once the cgroup is
// thawed every task traps into its ptrace stop before it runs a user instruction (CRIU's order).
#pragma once

#include <chrono>
#include <set>
#include <string>

namespace cryopod {

enum class FreezerKind { V1, V2 };

class CgroupFreezer {
 public:
  CgroupFreezer(FreezerKind kind, const std::string& cgroup_dir);  // freezes and waits until frozen
  ~CgroupFreezer();
  CgroupFreezer(const CgroupFreezer&) = delete;
  CgroupFreezer& operator=(const CgroupFreezer&) = delete;

  void thaw();
  void freeze();  // again, after a thaw (the constructor froze it first)
  // Every thread in the cgroup or a cgroup below it (thread IDs as our PID namespace sees them).
  std::set<int> threads() const;
  bool frozen() const { return frozen_; }
  const std::string& dir() const { return dir_; }
  std::chrono::steady_clock::time_point frozen_at() const { return frozen_at_; }

 private:
  bool is_frozen() const;
  FreezerKind kind_;
  std::string dir_;
  bool frozen_ = false;
  std::chrono::steady_clock::time_point frozen_at_;
};

}  // namespace cryopod
