// signalfd: the signal mask it reads, from fdinfo ("sigmask"); a restore makes a new one with it. The
// signals pending for the task are its own state, not the signalfd's.
#include <sys/syscall.h>

#include <cstdlib>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

bool is_signalfd(const FdProbe& p) { return p.link == "anon_inode:[signalfd]"; }

FileVerdict check_signalfd(const FdProbe& p) {
  if (p.field("sigmask").empty()) return {FileVerdict::Refused, "cannot read its signal mask from fdinfo"};
  return {FileVerdict::Saved, "mask " + p.field("sigmask")};
}

void dump_signalfd(const FdProbe& p, OpenFile& f) { f.state.num["sigmask"] = std::strtoull(p.field("sigmask").c_str(), nullptr, 16); }

long restore_signalfd(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (signalfd)";
  uint64_t mask = f.state.need("sigmask", what);
  long fd = m.rs().call(SYS_signalfd4, (uint64_t)-1, m.put(0, &mask, sizeof mask), sizeof mask, 0);
  if (fd < 0) throw_errno("in the restored task: signalfd for " + what, (int)-fd);
  return fd;
}

}  // namespace

extern const FileKind kSignalfdKind = {"signalfd", is_signalfd, check_signalfd, dump_signalfd, nullptr, restore_signalfd};

}  // namespace cryopod
