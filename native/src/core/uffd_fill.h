// Filling a stub's fresh anonymous memory with UFFDIO_COPY instead of process_vm_writev.
//
//   stub (remote syscalls)                       restorer
//   userfaultfd(UFFD_USER_MODE_ONLY) ──fd──► pidfd_getfd ──► our fd; the stub's copy is closed
//   UFFDIO_API, UFFDIO_REGISTER (MISSING) of every private anonymous VMA that has pages
//                                                fill: UFFDIO_COPY(dst in the stub, src our block buffer)
//                                                close: the last reference goes, the ranges are unregistered
//
// Why: a first touch by process_vm_writev faults in a zeroed page and then copies over it; UFFDIO_COPY
// allocates the page and copies into it, with no zeroing. Measured here (1 GiB from /dev/shm, one
// thread, read included): ~0.41 s of CPU against ~0.57 s. Nothing else changes: the same bytes, read
// into the same private buffer and hashed there, land at the same addresses, and the stub runs nothing
// before the restore ends. When the kernel or the stub's rights (a runtime's seccomp filter) refuse a
// userfaultfd, there is none and the fill writes with process_vm_writev as before.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "restore_morph.h"
#include "task_model.h"

namespace cryopod {

class StubUffd {
 public:
  StubUffd() = default;
  // Creates, registers and takes the stub's userfaultfd over the anonymous private VMAs of `vmas`
  // that hold dumped pages; an empty StubUffd (fd() < 0) when anything refuses. `serving` (a lazy
  // restore, lazy_pager.h): one that also catches the kernel's own accesses (a read() into a page not
  // there yet must wait for it, not fail with EFAULT), non-blocking to read faults from; it needs
  // CAP_SYS_PTRACE in the stub or vm.unprivileged_userfaultfd=1.
  static StubUffd open(Morph& m, const std::vector<Vma>& vmas, const std::vector<PageRun>& runs, bool serving = false);
  ~StubUffd();
  StubUffd(StubUffd&& o) noexcept : fd_(o.fd_), ranges_(std::move(o.ranges_)) { o.fd_ = -1; }
  StubUffd& operator=(StubUffd&& o) noexcept;
  StubUffd(const StubUffd&) = delete;
  StubUffd& operator=(const StubUffd&) = delete;

  int fd() const { return fd_; }
  // Registered [start, end), ascending.
  const std::vector<std::pair<uint64_t, uint64_t>>& ranges() const { return ranges_; }
  // Copies len bytes (page multiples) from src to the stub at dst; false when [dst, dst+len) is not
  // registered here (the caller writes it with process_vm_writev). Throws when the kernel refuses.
  bool copy(uint64_t dst, const void* src, uint64_t len) const;

 private:
  bool covers(uint64_t addr, uint64_t len) const;
  int fd_ = -1;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;  // registered [start, end), ascending
};

}  // namespace cryopod
