// VMA collection: /proc/PID/smaps (addresses, protections, VmFlags) + /proc/PID/map_files (the file that
// backs a mapping), classified into the kinds a restore knows how to rebuild. Anything it cannot rebuild
// faithfully fails the dump here, before a single page is read, with the mapping named in the error.
#pragma once

#include <vector>

#include "task_model.h"

namespace cryopod {

std::vector<Vma> collect_vmas(int pid);

// Finds a `syscall` instruction in the task's vDSO (read through /proc/PID/mem); returns its address.
uint64_t find_vdso_syscall(int pid, const std::vector<Vma>& vmas);

}  // namespace cryopod
