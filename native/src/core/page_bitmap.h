// Which pages must be dumped, from /proc/PID/pagemap (one u64 per virtual page):
//
//   bit 63 present │ bit 62 swapped │ bit 61 file-page or shared-anon │ bits 0-54 PFN (root only)
//
//   private anonymous VMA:  present (and not the zero page) or swapped   → dump
//   private file VMA:       present and not a file page (COW-ed), or swapped → dump
//   shared file VMA, vDSO/vvar/vsyscall: never (the file or the kernel holds the data)
//   untouched pages (neither present nor swapped): never (they read back as zero or as the file)
//
// The result is a list of runs in address order; pages sit in the pages image in that same order.
#pragma once

#include <cstdint>
#include <vector>

#include "task_model.h"

namespace cryopod {

constexpr uint64_t kPageSize = 4096;

// The PFN of the kernel's shared zero page (0 when PFNs are hidden from us: then zero pages are dumped).
uint64_t zero_page_pfn();

std::vector<PageRun> collect_page_runs(int pid, const std::vector<Vma>& vmas, uint64_t zero_pfn);

// Pages of a shmem VMA that hold data (SEEK_DATA over the object through /proc/PID/map_files): shared
// pages written only by another task are not in this task's page tables, but are in the object.
void append_shmem_runs(int pid, const Vma& v, std::vector<PageRun>& runs);

// Splits a child's runs: pages mapped at the same address in the parent with the same PFN are still
// copy-on-write shared and go to `inherited`; the rest stay in `runs`.
void split_inherited(int child, int parent, const std::vector<Vma>& child_vmas, const std::vector<Vma>& parent_vmas,
                     std::vector<PageRun>& runs, std::vector<PageRun>& inherited);

// Pure decision for one pagemap entry (exposed for unit tests).
bool page_must_be_dumped(const Vma& vma, uint64_t entry, uint64_t zero_pfn);

// Appends a page to a run list, merging with the last run when contiguous and that run is at index
// >= first_mergeable (runs never cross a VMA boundary, as CRIU's pagemap entries never do).
void append_page(std::vector<PageRun>& runs, uint64_t vaddr, size_t first_mergeable = 0);

}  // namespace cryopod
