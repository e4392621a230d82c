// The pipe kind: detected by its /proc link "pipe:[<inode>]"; a restore hands each holder the end kept by
// the task that re-created the pipe (restore_tree.cc create_pipes), or re-attaches an external one.
#include "pipe.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>

#include "../errors.h"
#include "../restore.h"
#include "../restore_morph.h"
#include "file_kind.h"
#include "inherit.h"
#include "shared_files.h"

namespace cryopod {

void for_each_open_fd(const std::function<void(int pid, int fd_dir, const char* name)>& visit) {
  DIR* proc = opendir("/proc");
  if (!proc) throw_errno_at("opendir", "/proc");
  while (dirent* de = readdir(proc)) {
    int pid = std::atoi(de->d_name);
    if (pid <= 0) continue;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* fds = opendir(dir.c_str());
    if (!fds) continue;  // exited, or a kernel thread
    while (dirent* fe = readdir(fds))
      if (fe->d_name[0] != '.') visit(pid, dirfd(fds), fe->d_name);
    closedir(fds);
  }
  closedir(proc);
}

std::map<uint64_t, std::set<int>> pipe_holders(const std::set<uint64_t>& pipes) {
  std::map<uint64_t, std::set<int>> holders;
  for_each_open_fd([&](int pid, int fd_dir, const char* name) {
    char buf[64];
    ssize_t n = readlinkat(fd_dir, name, buf, sizeof buf - 1);
    if (n <= 6 || std::string(buf, 6) != "pipe:[") return;
    buf[n] = 0;
    uint64_t ino = std::strtoull(buf + 6, nullptr, 10);
    if (pipes.count(ino)) holders[ino].insert(pid);
  });
  return holders;
}

// The bytes in a pipe, without taking them: tee() from a new read end (opened through /proc) into a
// scratch pipe, then read the scratch pipe.
std::vector<uint8_t> peek_pipe(int pid, int fd) {
  std::string path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  int rd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (rd < 0) throw_errno_at("open", path);
  int tmp[2];
  if (pipe2(tmp, O_NONBLOCK | O_CLOEXEC) != 0) {
    int e = errno;
    close(rd);
    throw_errno("pipe2", e);
  }
  fcntl(tmp[1], F_SETPIPE_SZ, (int)kMaxPipeBytes);
  std::vector<uint8_t> data;
  ssize_t n = tee(rd, tmp[1], kMaxPipeBytes, SPLICE_F_NONBLOCK);
  if (n > 0) {
    data.resize((size_t)n);
    size_t got = 0;
    while (got < data.size()) {
      ssize_t r = read(tmp[0], data.data() + got, data.size() - got);
      if (r <= 0) break;
      got += (size_t)r;
    }
    data.resize(got);
  }
  int tee_err = errno;
  close(rd);
  close(tmp[0]);
  close(tmp[1]);
  if (n < 0 && tee_err != EAGAIN) throw_errno_at("tee", path, tee_err);
  return data;
}

namespace {

bool is_pipe(const FdProbe& p) { return p.link.rfind("pipe:[", 0) == 0; }

void dump_pipe(const FdProbe& p, OpenFile& f) {
  f.pipe_id = std::strtoull(p.link.c_str() + 6, nullptr, 10);
  f.pipe_write = (p.flags & O_ACCMODE) == O_WRONLY;
}

long restore_pipe(Morph& m, const OpenFile& f, RestoreScope& scope) {
  if (is_external(f)) return open_inherited(m, f, scope);
  // Every holder is handed the end its creator keeps (restore_tree.cc create_pipes): the restorer takes
  // it from the creator (pidfd_getfd) and passes it with SCM_RIGHTS (shared_files.h), so no holder needs
  // the right to open another task's /proc/PID/fd (a postgres child may not, once it runs as postgres).
  auto it = scope.pipes ? scope.pipes->find(f.pipe_id) : PipeSources::const_iterator{};
  if (!scope.pipes || it == scope.pipes->end())
    throw CoreError("EIMAGE", "fd " + std::to_string(f.fd) + ": pipe " + std::to_string(f.pipe_id) + " has no source");
  const PipeSource& src = it->second;
  std::string what = "fd " + std::to_string(f.fd) + " (pipe " + std::to_string(f.pipe_id) + (f.pipe_write ? ", write end)" : ", read end)");
  int ours = FdHandover::take(src.creator_pid, f.pipe_write ? src.write_fd : src.read_fd, what);
  try {
    long fd = scope.handover->give(m, ours, what);
    close(ours);
    return fd;
  } catch (...) {
    close(ours);
    throw;
  }
}

}  // namespace

extern const FileKind kPipeKind = {"pipe", is_pipe, nullptr, dump_pipe, nullptr, restore_pipe};

}  // namespace cryopod
