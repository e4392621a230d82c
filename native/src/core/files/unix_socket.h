// What the preflight asks of a unix socket besides its kind's verdict (unix_socket.cc).
#pragma once

#include <cstdint>

#include "file_kind.h"

namespace cryopod {

// The inode of the socket this one is connected to (sock_diag, in the task's network namespace); 0: none.
uint64_t unix_peer_of(const FdProbe& p);

}  // namespace cryopod
