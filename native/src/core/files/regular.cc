// Regular files and directories: reopened by path inside the stub (so in its mount namespace), at the
// saved offset, with the file locks held through them (locks.h). A deleted file is not taken here (its
// path no longer names it).
#include <fcntl.h>
#include <sys/syscall.h>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"
#include "locks.h"

namespace cryopod {

namespace {

bool deleted(const FdProbe& p) {
  return p.link.size() > 10 && p.link.compare(p.link.size() - 10, 10, " (deleted)") == 0;
}

bool is_regular(const FdProbe& p) { return !p.link.empty() && p.link[0] == '/' && !deleted(p) && S_ISREG(p.st.st_mode); }
bool is_dir(const FdProbe& p) { return !p.link.empty() && p.link[0] == '/' && !deleted(p) && S_ISDIR(p.st.st_mode); }

FileVerdict check_path(const FdProbe& p) {
  std::string why = lock_problem(p);
  if (!why.empty()) return {FileVerdict::Refused, why};
  size_t locks = p.lines("lock").size();
  return {FileVerdict::Saved, locks ? std::to_string(locks) + " lock" + (locks > 1 ? "s" : "") : ""};
}

void dump_path(const FdProbe& p, OpenFile& f) {
  f.pos = p.pos;
  f.size = S_ISREG(p.st.st_mode) ? (uint64_t)p.st.st_size : 0;
  dump_locks(p, f);
}

long reopen(Morph& m, const OpenFile& f, RestoreScope&) {
  int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
  if (f.kind == "dir") flags |= O_DIRECTORY;
  long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, f.path), flags, 0);
  if (fd < 0) throw_errno("in the restored task: reopen fd " + std::to_string(f.fd) + " " + f.path, (int)-fd);
  if (f.kind == "reg") m.rs().must("lseek " + f.path, SYS_lseek, (uint64_t)fd, f.pos, SEEK_SET);
  restore_locks(m, fd, f);
  return fd;
}

}  // namespace

extern const FileKind kRegularKind = {"reg", is_regular, check_path, dump_path, nullptr, reopen};
extern const FileKind kDirKind = {"dir", is_dir, check_path, dump_path, nullptr, reopen};

}  // namespace cryopod
