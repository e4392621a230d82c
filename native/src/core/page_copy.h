// Moving page data between a task and the raw pages image (pages-1.img).
//
//   task memory        pages image (raw, page aligned, no header: CRIU's format)
//   ┌──────────┐       ┌──────────┐
//   │ run 0    │ ───►  │ run 0    │ offset 0
//   │  ...     │       │ run 1    │ offset run0.nr_pages * 4096
//   │ run 1    │ ───►  │  ...     │
//   └──────────┘       └──────────┘
//
// Dump: process_vm_readv in batches into a bounded buffer, then write() (the parasite/vmsplice path of
// the memory-core issue replaces this; this stays as the fallback and the benchmark baseline). Runs in
// VMAs without PROT_READ go through /proc/PID/mem, which may read them.
// Restore: page_fill.h (read in blocks, hashed when a digest is registered, process_vm_writev on every core).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "task_model.h"

namespace cryopod {

// Writes every run's pages to `out_fd`; returns the bytes written.
uint64_t dump_pages(int pid, const std::vector<Vma>& vmas, const std::vector<PageRun>& runs, int out_fd);

// Copies the pages image into the task; the VMAs must be mapped writable already. When `verify` (the
// restore request's, may be null) holds a digest for this image, the fill checks it (page_fill.h).
// `uffd` (may be null): the stub's userfaultfd over its fresh anonymous VMAs (uffd_fill.h).
class PagesVerification;
class StubUffd;
// The one open of a pages image for a restore: no symlink, a regular file of exactly `need` bytes; the fd.
int open_pages_image(const std::string& pages_path, uint64_t need);
void fill_pages(int pid, const std::vector<PageRun>& runs, const std::string& pages_path, PagesVerification* verify,
                const StubUffd* uffd = nullptr);

}  // namespace cryopod
