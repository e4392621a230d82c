// Deleted ("unlinked") regular files held open: the path is gone, so the contents are saved (read through
// /proc/PID/fd/N, at most kMaxGhostBytes) and the restore re-creates the file as a ghost, as CRIU
// does: at its old path when that is free (else beside it), filled from here, opened with the saved
// flags and offset, and unlinked again, so /proc shows "<path> (deleted)" as before. Each fd gets a copy
// of its own; a deleted file held by two fds is refused.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../errors.h"
#include "../restore_morph.h"
#include "contents.h"
#include "file_kind.h"
#include "../proc.h"

namespace cryopod {

namespace {

constexpr uint64_t kMaxGhostBytes = 8 << 20;  // kept in its files.img entry, as a memfd's
const std::string kDeleted = " (deleted)";

bool is_ghost(const FdProbe& p) {
  return S_ISREG(p.st.st_mode) && !p.link.empty() && p.link[0] == '/' && p.link.size() > kDeleted.size() &&
         p.link.compare(p.link.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0 && p.st.st_nlink == 0;
}

FileVerdict check_ghost(const FdProbe& p) {
  if ((uint64_t)p.st.st_size > kMaxGhostBytes)
    return {FileVerdict::Refused, "the deleted file holds " + std::to_string(p.st.st_size) + " bytes, over the cap of " +
                                      std::to_string(kMaxGhostBytes) + " bytes"};
  if (!p.lines("lock").empty()) return {FileVerdict::Refused, "a lock on a deleted file is not saved"};
  for (int other : list_fds(p.pid)) {
    if (other == p.fd) continue;
    struct stat st {};
    std::string link = "/proc/" + std::to_string(p.pid) + "/fd/" + std::to_string(other);
    if (stat(link.c_str(), &st) == 0 && st.st_dev == p.st.st_dev && st.st_ino == p.st.st_ino)
      return {FileVerdict::Refused, "the deleted file is also open as fd " + std::to_string(other) + ": a restore would make two files"};
  }
  return {FileVerdict::Saved, "contents saved (" + std::to_string(p.st.st_size) + " bytes), re-created as a ghost"};
}

void dump_ghost(const FdProbe& p, OpenFile& f) {
  // A new read-only open through /proc (the fd itself may be write-only).
  std::string link = "/proc/" + std::to_string(p.pid) + "/fd/" + std::to_string(p.fd);
  int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", link);
  struct stat st {};
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > kMaxGhostBytes) {
    close(fd);
    p.refuse("the deleted file grew over the cap of " + std::to_string(kMaxGhostBytes) + " bytes");
  }
  f.state.data = read_contents(fd, (size_t)st.st_size, p.name());
  f.pos = p.pos;
  f.size = (uint64_t)st.st_size;
}

long restore_ghost(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (" + f.path + ")";
  if (f.path.size() <= kDeleted.size()) throw CoreError("EIMAGE", what + ": not the path of a deleted file");
  std::string path = f.path.substr(0, f.path.size() - kDeleted.size());
  long tmp = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, path), O_CREAT | O_EXCL | O_RDWR, f.mode & 07777);
  if (tmp == -EEXIST) {  // a new file took the old path: the ghost goes beside it
    path += ".cryopod-ghost-" + std::to_string(f.fd);
    tmp = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, path), O_CREAT | O_EXCL | O_RDWR, f.mode & 07777);
  }
  if (tmp < 0) throw_errno("in the restored task: create the ghost " + path + " of " + what, (int)-tmp);
  long fd = -EIO;
  try {
    write_contents(m.task().pid(), tmp, f.state.data, what);
    fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, path), f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY), 0);
  } catch (...) {
    m.rs().call(SYS_unlinkat, (uint64_t)AT_FDCWD, m.put_string(0, path), 0);
    throw;
  }
  m.rs().call(SYS_unlinkat, (uint64_t)AT_FDCWD, m.put_string(0, path), 0);
  m.rs().call(SYS_close, (uint64_t)tmp);
  if (fd < 0) throw_errno("in the restored task: fill and reopen the ghost of " + what, (int)-fd);
  m.rs().must("lseek " + what, SYS_lseek, (uint64_t)fd, f.pos, SEEK_SET);
  return fd;
}

}  // namespace

extern const FileKind kGhostKind = {"ghost", is_ghost, check_ghost, dump_ghost, nullptr, restore_ghost};

}  // namespace cryopod
