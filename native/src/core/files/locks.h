// File locks held through an fd (fdinfo "lock:" lines): flock, POSIX (fcntl F_SETLK, the process's own)
// and OFD (F_OFD_SETLK) locks, kept as items of the fd's state { lock: 0 flock, 1 POSIX, 2 OFD; write;
// start; len (0: to EOF) } and taken again on the reopened fd. Leases and delegations are refused.
#pragma once

#include "file_kind.h"

namespace cryopod {

// Refused: a lease or another lock a restore cannot take again ("" when all can be).
std::string lock_problem(const FdProbe& p);
void dump_locks(const FdProbe& p, OpenFile& f);
// Takes the saved locks on `fd` inside the task; ELOCKED when another process holds one now.
void restore_locks(Morph& m, long fd, const OpenFile& f);

}  // namespace cryopod
