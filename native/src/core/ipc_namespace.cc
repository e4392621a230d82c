#include "ipc_namespace.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "proc.h"

namespace cryopod {

namespace {

// An fd of the task's IPC namespace, or -1 when it is ours.
int foreign_ipc_ns(int pid) {
  std::string ns = "/proc/" + std::to_string(pid) + "/ns/ipc";
  struct stat mine {}, theirs {};
  if (stat("/proc/self/ns/ipc", &mine) != 0 || stat(ns.c_str(), &theirs) != 0) throw_errno_at("stat", ns);
  if (mine.st_ino == theirs.st_ino) return -1;
  int fd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", ns);
  return fd;
}

// Runs `body` in a child that joined the IPC namespace `nsfd` (async-signal-safe code only: the parent
// is multi-threaded); the child's exit code is body's result (an errno value, 0 for success).
template <typename Body>
int in_ipc_ns(int nsfd, Body body) {
  pid_t child = fork();
  if (child == 0) _exit(setns(nsfd, CLONE_NEWIPC) != 0 ? EPERM : body());
  if (child < 0) return errno;
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : EIO;
}

}  // namespace

std::string read_sysvipc_shm(int pid) {
  int nsfd = foreign_ipc_ns(pid);
  if (nsfd < 0) return read_text("/proc/sysvipc/shm");
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    int e = errno;
    close(nsfd);
    throw_errno("pipe2", e);
  }
  // The child writes the file into the pipe while we read it: a full pipe must not stall it, so the
  // reading happens here, concurrently, before waiting for it.
  pid_t child = fork();
  if (child == 0) {
    close(p[0]);
    if (setns(nsfd, CLONE_NEWIPC) != 0) _exit(EPERM);
    int fd = open("/proc/sysvipc/shm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) _exit(errno);
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
      if (write(p[1], buf, (size_t)n) != n) _exit(EIO);
    _exit(0);
  }
  int fork_err = errno;
  close(p[1]);
  close(nsfd);
  std::string text;
  if (child > 0) {
    char buf[4096];
    for (ssize_t n; (n = read(p[0], buf, sizeof buf)) != 0;) {
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) break;
      text.append(buf, (size_t)n);
    }
  }
  close(p[0]);
  if (child < 0) throw_errno("fork", fork_err);
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw_errno("read /proc/sysvipc/shm in the IPC namespace of pid " + std::to_string(pid),
                WIFEXITED(status) ? WEXITSTATUS(status) : EIO);
  return text;
}

void set_shm_next_id(int pid, uint64_t shmid) {
  std::string id = std::to_string(shmid);
  auto write_id = [&id]() -> int {
    int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    int e = write(fd, id.data(), id.size()) == (ssize_t)id.size() ? 0 : errno;
    close(fd);
    return e;
  };
  int nsfd = foreign_ipc_ns(pid);
  int err = nsfd < 0 ? write_id() : in_ipc_ns(nsfd, write_id);
  if (nsfd >= 0) close(nsfd);
  if (err != 0) throw_errno("kernel.shm_next_id = " + id + " in the IPC namespace of pid " + std::to_string(pid), err);
}

}  // namespace cryopod
