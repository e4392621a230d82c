// memfd held as an fd: its name, seals, size and contents (read through a pidfd_getfd duplicate), up to
// kMaxMemfdBytes; a restore creates it again in the task (memfd_create with MFD_ALLOW_SEALING), writes the
// contents from here through /proc/<task>/fd/<n>, and seals it last. A memfd that is also mapped is
// refused: the mapping is dumped as shared memory of its own, and the two would come back apart.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "../errors.h"
#include "../restore_morph.h"
#include "contents.h"
#include "file_kind.h"

namespace cryopod {

namespace {

constexpr uint64_t kMaxMemfdBytes = 8 << 20;  // the images keep the contents in files.img (16 MiB an entry)

bool is_memfd(const FdProbe& p) {
  const std::string suffix = " (deleted)";
  return S_ISREG(p.st.st_mode) && p.link.rfind("/memfd:", 0) == 0 && p.link.size() > suffix.size() &&
         p.link.compare(p.link.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string name_of(const FdProbe& p) { return p.link.substr(7, p.link.size() - 7 - 10); }

// Whether the task maps this very memfd (same inode in /proc/PID/maps).
bool mapped(const FdProbe& p) {
  std::ifstream maps("/proc/" + std::to_string(p.pid) + "/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev;
    uint64_t inode = 0;
    in >> range >> perms >> offset >> dev >> inode;
    if (inode == p.st.st_ino && line.find("/memfd:") != std::string::npos) return true;
  }
  return false;
}

FileVerdict check_memfd(const FdProbe& p) {
  if ((uint64_t)p.st.st_size > kMaxMemfdBytes)
    return {FileVerdict::Refused, "memfd \"" + name_of(p) + "\" holds " + std::to_string(p.st.st_size) + " bytes, over the cap of " +
                                      std::to_string(kMaxMemfdBytes) + " bytes"};
  if (mapped(p)) return {FileVerdict::Refused, "memfd \"" + name_of(p) + "\" is also mapped: a memfd both held and mapped is not supported yet"};
  return {FileVerdict::Saved, "memfd \"" + name_of(p) + "\", " + std::to_string(p.st.st_size) + " bytes"};
}

void dump_memfd(const FdProbe& p, OpenFile& f) {
  int fd = p.dup();
  struct stat st {};
  int seals = fcntl(fd, F_GET_SEALS);
  if (fstat(fd, &st) != 0 || seals < 0) {
    int e = errno;
    close(fd);
    throw_errno("read the seals and size of " + p.name(), e);
  }
  if ((uint64_t)st.st_size > kMaxMemfdBytes) {
    close(fd);
    p.refuse("memfd \"" + name_of(p) + "\" holds " + std::to_string(st.st_size) + " bytes, over the cap of " + std::to_string(kMaxMemfdBytes));
  }
  f.state.data = read_contents(fd, (size_t)st.st_size, p.name());
  f.state.text["name"] = name_of(p);
  f.state.num["seals"] = (uint64_t)seals;
  f.pos = p.pos;
  f.size = (uint64_t)st.st_size;
}

long restore_memfd(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (memfd)";
  auto name = f.state.text.find("name");
  if (name == f.state.text.end()) throw CoreError("EIMAGE", what + ": the image has no name");
  if (f.state.data.size() > kMaxMemfdBytes) throw CoreError("EIMAGE", what + ": contents over the cap");
  long fd = m.rs().call(SYS_memfd_create, m.put_string(0, name->second), MFD_ALLOW_SEALING);
  if (fd < 0) throw_errno("in the restored task: memfd_create " + name->second + " for " + what, (int)-fd);
  // The contents go in from here: the task's fd opened through /proc is the same file.
  write_contents(m.task().pid(), fd, f.state.data, what);
  m.rs().must("lseek " + what, SYS_lseek, (uint64_t)fd, f.pos, SEEK_SET);
  uint64_t seals = f.state.get("seals");
  if (seals) m.rs().must("fcntl(F_ADD_SEALS) " + what, SYS_fcntl, (uint64_t)fd, F_ADD_SEALS, seals);
  return fd;
}

}  // namespace

extern const FileKind kMemfdKind = {"memfd", is_memfd, check_memfd, dump_memfd, nullptr, restore_memfd};

}  // namespace cryopod
