// The inet socket kind's dump half that runs inside the task (remote syscalls on a scratch page).
#pragma once

#include <cstdint>

#include "../remote_syscall.h"
#include "../task_model.h"

namespace cryopod {

// Fills in a socket fd from inside the task (getsockopt, getsockname, getpeername); refuses what a
// restore could not re-create faithfully.
void describe_socket(RemoteSyscalls& rs, int pid, uint64_t scratch, OpenFile& f);

}  // namespace cryopod
