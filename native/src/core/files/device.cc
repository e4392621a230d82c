// Character devices that are safe to open again anywhere: /dev/null, and /dev/zero, /dev/full,
// /dev/random, /dev/urandom (no state a process could tell apart). Terminals and other devices are
// refused by the driver.
#include <fcntl.h>
#include <sys/syscall.h>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

bool is_devnull(const FdProbe& p) { return S_ISCHR(p.st.st_mode) && p.link == "/dev/null"; }

bool is_stateless_device(const FdProbe& p) {
  return S_ISCHR(p.st.st_mode) &&
         (p.link == "/dev/zero" || p.link == "/dev/urandom" || p.link == "/dev/random" || p.link == "/dev/full");
}

void dump_device(const FdProbe& p, OpenFile& f) { f.pos = p.pos; }

long reopen_device(Morph& m, const OpenFile& f, RestoreScope&) {
  int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, f.path), flags, 0);
  if (fd < 0) throw_errno("in the restored task: reopen fd " + std::to_string(f.fd) + " " + f.path, (int)-fd);
  return fd;
}

}  // namespace

extern const FileKind kDevNullKind = {"devnull", is_devnull, nullptr, dump_device, nullptr, reopen_device};
extern const FileKind kCharDeviceKind = {"chr", is_stateless_device, nullptr, dump_device, nullptr, reopen_device};

}  // namespace cryopod
