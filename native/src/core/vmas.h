// VMA collection: /proc/PID/smaps (addresses, protections, VmFlags) + /proc/PID/map_files (the file that
// backs a mapping), classified into the kinds a restore knows how to rebuild. Anything it cannot rebuild
// faithfully fails the dump here, before a single page is read, with the mapping named in the error.
#pragma once

#include <vector>

#include "proc.h"
#include "task_model.h"

namespace cryopod {

// A mapped deleted file's contents are saved (Vma::ghost_data): at most this much per file, this many files.
constexpr uint64_t kMaxMappedGhostBytes = 8 << 20;
constexpr size_t kMaxMappedGhosts = 64;

std::vector<Vma> collect_vmas(int pid);

// The same while the task is frozen, without the smaps page walk: the layout comes from /proc/PID/maps
// and VmFlags from `before`, an smaps read taken just before the freeze, for every VMA whose range,
// protection, offset and file are unchanged; only if one is not does it read smaps again.
std::vector<Vma> collect_vmas_fast(int pid, const std::vector<SmapsEntry>& before);

// Finds a `syscall` instruction in the task's vDSO (read through /proc/PID/mem); returns its address.
uint64_t find_vdso_syscall(int pid, const std::vector<Vma>& vmas);

}  // namespace cryopod
