#include "uffd_fill.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "errors.h"

namespace cryopod {

namespace {

// Remote ioctl with its argument struct in the stub's scratch area; the syscall's result.
template <typename T>
long remote_ioctl(Morph& m, long fd, unsigned long request, const T& arg) {
  uint64_t at = m.put(0, &arg, sizeof arg);
  return m.rs().call(SYS_ioctl, (uint64_t)fd, request, at);
}

}  // namespace

StubUffd StubUffd::open(Morph& m, const std::vector<Vma>& vmas, const std::vector<PageRun>& runs, bool serving) {
  StubUffd u;
  // Only VMAs that receive pages, and only private anonymous ones (MISSING mode does not cover private
  // file mappings, and a shared object is filled through its own path).
  for (const Vma& v : vmas) {
    if (v.kind != VmaKind::Anon || v.is_special() || (v.flags & MAP_SHARED)) continue;
    bool has_pages = std::any_of(runs.begin(), runs.end(), [&](const PageRun& r) { return r.vaddr >= v.start && r.vaddr < v.end; });
    if (has_pages) u.ranges_.push_back({v.start, v.end});
  }
  if (u.ranges_.empty()) return u;
  RemoteSyscalls& rs = m.rs();
  long ufd = rs.call(SYS_userfaultfd, O_CLOEXEC | (serving ? O_NONBLOCK : UFFD_USER_MODE_ONLY));
  if (ufd < 0) return StubUffd();  // refused (seccomp, an old kernel): process_vm_writev then
  bool ok = true;
  uffdio_api api{};
  api.api = UFFD_API;
  // Serving: a fork() must be seen (the child's copy of the registrations stays with a userfaultfd of
  // its own, so its missing pages wait instead of reading as zeros): lazy_pager.h.
  if (serving) api.features = UFFD_FEATURE_EVENT_FORK;
  ok = remote_ioctl(m, ufd, UFFDIO_API, api) == 0;
  for (const auto& [start, end] : u.ranges_) {
    if (!ok) break;
    uffdio_register reg{};
    reg.range.start = start;
    reg.range.len = end - start;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    ok = remote_ioctl(m, ufd, UFFDIO_REGISTER, reg) == 0;
  }
  if (ok) {
    int pidfd = (int)syscall(SYS_pidfd_open, m.task().pid(), 0);
    if (pidfd >= 0) {
      u.fd_ = (int)syscall(SYS_pidfd_getfd, pidfd, (int)ufd, 0);  // O_CLOEXEC on our side
      close(pidfd);
    }
  }
  // The stub keeps nothing: closing its copy leaves ours the last reference (registrations go with it).
  rs.call(SYS_close, (uint64_t)ufd);
  if (u.fd_ < 0) return StubUffd();
  return u;
}

StubUffd::~StubUffd() {
  if (fd_ >= 0) close(fd_);
}

StubUffd& StubUffd::operator=(StubUffd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    ranges_ = std::move(o.ranges_);
    o.fd_ = -1;
  }
  return *this;
}

bool StubUffd::covers(uint64_t addr, uint64_t len) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), std::make_pair(addr, UINT64_MAX));
  if (it == ranges_.begin()) return false;
  --it;
  return addr >= it->first && addr + len <= it->second;
}

bool StubUffd::copy(uint64_t dst, const void* src, uint64_t len) const {
  if (fd_ < 0 || !covers(dst, len)) return false;
  while (len > 0) {
    uffdio_copy c{};
    c.dst = dst;
    c.src = (uint64_t)src;
    c.len = len;
    c.mode = 0;
    if (ioctl(fd_, UFFDIO_COPY, &c) == 0) return true;
    int err = errno;
    // A partial copy reports its bytes; EAGAIN asks to retry the rest.
    if (c.copy > 0) {
      dst += (uint64_t)c.copy;
      src = (const uint8_t*)src + c.copy;
      len -= (uint64_t)c.copy;
      continue;
    }
    if (err == EAGAIN) continue;
    // No fallback here: a registered range's missing pages cannot be written by process_vm_writev
    // (a kernel-mode fault in a UFFD_USER_MODE_ONLY range fails). The fresh VMAs hold no page yet, so
    // this is the stub gone or out of memory: the restore fails and kills it.
    throw_errno("UFFDIO_COPY into pid stub at " + std::to_string(dst), err);
  }
  return true;
}

}  // namespace cryopod
