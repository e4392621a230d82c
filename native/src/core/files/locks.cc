#include "locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <sstream>

#include "../errors.h"
#include "../restore_morph.h"

namespace cryopod {

namespace {

enum LockKind : uint64_t { kFlock = 0, kPosix = 1, kOfd = 2 };

struct LockLine {
  std::string cls, access, start, end;
  long pid = 0;
  bool waiter = false;
};

// "lock:\t1: FLOCK  ADVISORY  WRITE 527 fe:00:9978484 0 EOF" (a waiter has "->" after the number).
LockLine parse(const std::string& line) {
  std::istringstream in(line.substr(line.find(':') + 1));
  LockLine l;
  std::string id, mode, dev;
  in >> id >> l.cls;
  if (l.cls == "->") {
    l.waiter = true;
    in >> l.cls;
  }
  in >> mode >> l.access >> l.pid >> dev >> l.start >> l.end;
  return l;
}

}  // namespace

std::string lock_problem(const FdProbe& p) {
  for (const std::string& line : p.lines("lock")) {
    LockLine l = parse(line);
    if (l.waiter) continue;
    if (l.cls != "FLOCK" && l.cls != "POSIX" && l.cls != "OFDLCK") return "holds a " + l.cls + " (only flock, POSIX and OFD locks are saved)";
    if (l.access != "READ" && l.access != "WRITE") return "holds a " + l.cls + " lock in state " + l.access;
  }
  return "";
}

void dump_locks(const FdProbe& p, OpenFile& f) {
  for (const std::string& line : p.lines("lock")) {
    LockLine l = parse(line);
    if (l.waiter) continue;
    if (l.cls == "POSIX" && l.pid != p.pid) continue;  // another process's lock on the same file
    FileState item;
    item.num["lock"] = l.cls == "FLOCK" ? kFlock : l.cls == "POSIX" ? kPosix : kOfd;
    item.num["write"] = l.access == "WRITE";
    uint64_t start = std::strtoull(l.start.c_str(), nullptr, 10);
    item.num["start"] = start;
    item.num["len"] = l.end == "EOF" ? 0 : std::strtoull(l.end.c_str(), nullptr, 10) - start + 1;
    f.state.items.push_back(item);
  }
}

void restore_locks(Morph& m, long fd, const OpenFile& f) {
  for (const FileState& item : f.state.items) {
    if (!item.has("lock")) continue;
    std::string what = "fd " + std::to_string(f.fd) + " (" + f.path + ")";
    uint64_t kind = item.need("lock", what);
    bool write = item.get("write") != 0;
    long r;
    if (kind == kFlock) {
      r = m.rs().call(SYS_flock, (uint64_t)fd, (write ? LOCK_EX : LOCK_SH) | LOCK_NB);
    } else {
      struct flock fl {};
      fl.l_type = write ? F_WRLCK : F_RDLCK;
      fl.l_whence = SEEK_SET;
      fl.l_start = (off_t)item.get("start");
      fl.l_len = (off_t)item.get("len");
      r = m.rs().call(SYS_fcntl, (uint64_t)fd, kind == kPosix ? F_SETLK : F_OFD_SETLK, m.put(512, &fl, sizeof fl));
    }
    const char* name = kind == kFlock ? "flock" : kind == kPosix ? "POSIX lock" : "OFD lock";
    if (r == -EAGAIN || r == -EACCES)
      throw CoreError("ELOCKED", what + ": its " + std::string(name) + " is held by another process now (is the checkpointed process still running?)");
    if (r < 0) throw_errno("in the restored task: take the " + std::string(name) + " of " + what + " again", (int)-r);
  }
}

}  // namespace cryopod
