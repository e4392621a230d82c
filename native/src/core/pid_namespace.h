// PID namespaces on the dump side. A tree that lives in a PID namespace below ours (a container's) is
// saved, as CRIU saves it, with the IDs its tasks see there: a restore into a namespace of its own gives
// every task and thread the ID it had, whatever host PIDs it gets.
#pragma once

#include <cstdint>
#include <vector>

#include "task_model.h"

namespace cryopod {

// The PID namespace `pid` lives in (its nsfs inode), and whether that is ours.
uint64_t pid_namespace_of(int pid);
bool in_our_pid_namespace(int pid);

// Rewrites the IDs of dumped tasks (a tree, root first) as they see them when the root's PID namespace
// is not ours: pid, ppid (0 for a parent outside the namespace), pgid and sid (0 when their leader is
// outside), every thread's ID; sets own_pid_ns. Every task must live in the root's namespace. Reads
// /proc: call it while the tasks still exist.
void to_namespace_ids(const std::vector<TaskImage*>& tasks);

}  // namespace cryopod
