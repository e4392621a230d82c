// eventfd: its counter and EFD_SEMAPHORE from fdinfo ("eventfd-count" in hex, "eventfd-semaphore"); a
// restore makes a new one and writes the counter into it (eventfd2's initval is only 32 bits wide).
#include <sys/eventfd.h>
#include <sys/syscall.h>

#include <cstdlib>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

bool is_eventfd(const FdProbe& p) { return p.link == "anon_inode:[eventfd]"; }

FileVerdict check_eventfd(const FdProbe& p) {
  if (p.field("eventfd-count").empty()) return {FileVerdict::Refused, "this kernel does not show the eventfd's counter in fdinfo"};
  if (p.field("eventfd-semaphore").empty()) return {FileVerdict::Refused, "this kernel does not show whether the eventfd is a semaphore (Linux 6.4+)"};
  return {FileVerdict::Saved, "counter " + std::to_string(std::strtoull(p.field("eventfd-count").c_str(), nullptr, 16))};
}

void dump_eventfd(const FdProbe& p, OpenFile& f) {
  f.state.num["counter"] = std::strtoull(p.field("eventfd-count").c_str(), nullptr, 16);
  f.state.num["semaphore"] = std::strtoul(p.field("eventfd-semaphore").c_str(), nullptr, 10) != 0;
}

long restore_eventfd(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (eventfd)";
  uint64_t counter = f.state.need("counter", what);
  if (counter == UINT64_MAX) throw CoreError("EIMAGE", what + ": counter " + std::to_string(counter) + " is above the maximum");
  long fd = m.rs().call(SYS_eventfd2, 0, f.state.get("semaphore") ? EFD_SEMAPHORE : 0);
  if (fd < 0) throw_errno("in the restored task: eventfd for " + what, (int)-fd);
  if (counter > 0) {
    long n = m.rs().call(SYS_write, (uint64_t)fd, m.put(0, &counter, sizeof counter), sizeof counter);
    if (n != (long)sizeof counter) throw_errno("in the restored task: write the counter of " + what, n < 0 ? (int)-n : EIO);
  }
  return fd;
}

}  // namespace

extern const FileKind kEventfdKind = {"eventfd", is_eventfd, check_eventfd, dump_eventfd, nullptr, restore_eventfd};

}  // namespace cryopod
