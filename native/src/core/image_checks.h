// The native core's own check of a task image's memory layout, right before a restore maps anything.
//
// images/ (TypeScript) already refuses every image this refuses (images/layout.ts, the same rules); the
// core checks again because it is what maps memory and writes pages into a stub, and an image reaches it
// through N-API from anywhere. Everything is computed on ranges, never page by page, so the cost is
// linear in the image's entries whatever sizes they claim:
//
//   VMAs    page-aligned, non-empty, ascending, non-overlapping, below kUserTop; at most kMaxVmas
//   runs    page-aligned, at least one page, no end past kUserTop (so no overflow), ascending,
//           non-overlapping, each inside one VMA whose kind has dumped pages (anon, file-private,
//           shmem); at most kMaxRuns; returns the bytes they take in the pages file, which the fill
//           compares with the file it opened (fill_pages)
//   inherited runs (still shared with the parent, not in the pages file): the same shape, each inside
//           one anon or file-private VMA, none overlapping a dumped run
//
// A violation throws CoreError EBOUNDS (ETOOBIG over a cap, EIMAGE for a bad VMA) naming the entry.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "task_model.h"

namespace cryopod {

// Highest user address + 1 with 5-level page tables (4-level tables stop at 1 << 47).
constexpr uint64_t kUserTop = 1ULL << 56;
// As images/limits.ts MAX_VMAS and MAX_PAGE_RUNS.
constexpr size_t kMaxVmas = 1u << 20;
constexpr size_t kMaxRuns = 4u << 20;

uint64_t check_memory_layout(const TaskImage& img);

// The parts of [start, end) that no range of `present` covers, in order. `present`: [start, end) ranges
// sorted by start and not overlapping (a checked image's dumped and inherited runs together).
std::vector<std::pair<uint64_t, uint64_t>> uncovered(uint64_t start, uint64_t end,
                                                     const std::vector<std::pair<uint64_t, uint64_t>>& present);

}  // namespace cryopod
