// The SysV IPC namespace of a task. /proc/sysvipc/shm and kernel.shm_next_id act on the IPC namespace
// of whoever opens them, not on a task's: for a task in another one (a container's), a child of ours
// joins that namespace (setns) to read or write them.
#pragma once

#include <cstdint>
#include <string>

namespace cryopod {

// /proc/sysvipc/shm as the task's IPC namespace shows it.
std::string read_sysvipc_shm(int pid);

// Makes the next SysV segment created in the task's IPC namespace get `shmid`. Throws on failure.
void set_shm_next_id(int pid, uint64_t shmid);

}  // namespace cryopod
