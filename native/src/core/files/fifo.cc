// The fifo kind: a path whose stat is S_IFIFO. The dump peeks the bytes it holds (tee, as for a pipe);
// settle_fifo_bytes keeps them once per FIFO, and only when no process outside the tree has it open. A
// restore opens the path read-write first (so that opening an end never waits for the other one and the
// bytes have a reader), then the saved end, writes the bytes back from here, and lets go of the first.
#include "fifo.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"
#include "pipe.h"

namespace cryopod {

namespace {

bool is_fifo(const FdProbe& p) {
  const std::string deleted = " (deleted)";
  bool gone = p.link.size() > deleted.size() && p.link.compare(p.link.size() - deleted.size(), deleted.size(), deleted) == 0;
  return S_ISFIFO(p.st.st_mode) && !p.link.empty() && p.link[0] == '/' && !gone;
}

void dump_fifo(const FdProbe& p, OpenFile& f) {
  f.state.num["dev"] = p.st.st_dev;
  f.state.num["ino"] = p.st.st_ino;
  f.state.data = peek_pipe(p.pid, p.fd);
}

// Every process that has the FIFO (dev, ino) open.
std::set<int> fifo_holders(uint64_t dev, uint64_t ino) {
  std::set<int> out;
  for_each_open_fd([&](int pid, int fd_dir, const char* name) {
    struct stat st {};
    if (fstatat(fd_dir, name, &st, 0) == 0 && S_ISFIFO(st.st_mode) && st.st_dev == dev && st.st_ino == ino) out.insert(pid);
  });
  return out;
}

long restore_fifo(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (FIFO " + f.path + ")";
  uint64_t path = m.put_string(0, f.path);
  long keeper = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, path, O_RDWR | O_NONBLOCK, 0);
  if (keeper < 0) throw_errno("in the restored task: open " + f.path + " for " + what, (int)-keeper);
  long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, path, (f.flags & O_ACCMODE) | O_NONBLOCK, 0);
  if (fd < 0) {
    m.rs().call(SYS_close, (uint64_t)keeper);
    throw_errno("in the restored task: open " + f.path + " for " + what, (int)-fd);
  }
  if (!f.state.data.empty()) {
    std::string proc = "/proc/" + std::to_string(m.task().pid()) + "/fd/" + std::to_string(keeper);
    int w = open(proc.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w < 0) throw_errno_at("open", proc);
    fcntl(w, F_SETPIPE_SZ, (int)f.state.data.size());
    ssize_t n = write(w, f.state.data.data(), f.state.data.size());
    int e = errno;
    close(w);
    if (n != (ssize_t)f.state.data.size()) throw_errno("refill " + what, n < 0 ? e : EIO);
  }
  m.rs().call(SYS_close, (uint64_t)keeper);
  return fd;
}

}  // namespace

void settle_fifo_bytes(const std::vector<TaskImage*>& tasks, const std::set<int>& members) {
  std::map<std::pair<uint64_t, uint64_t>, bool> seen;  // (dev, ino) → bytes kept already
  for (TaskImage* t : tasks)
    for (OpenFile& f : t->files) {
      if (f.kind != "fifo") continue;
      auto key = std::make_pair(f.state.get("dev"), f.state.get("ino"));
      if (!seen.count(key)) {
        bool outside = false;
        for (int h : fifo_holders(key.first, key.second))
          if (!members.count(h)) outside = true;
        seen[key] = outside;  // an outside holder keeps the FIFO and its bytes alive: save none
        if (!outside) continue;
      }
      f.state.data.clear();
    }
}

extern const FileKind kFifoKind = {"fifo", is_fifo, nullptr, dump_fifo, nullptr, restore_fifo};

}  // namespace cryopod
