#include "stub_process.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "clone3.h"
#include "errors.h"

namespace cryopod {

namespace {
bool read_full(int fd, void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = read(fd, (char*)buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}
}  // namespace

StubProcess::StubProcess(const std::string& stub_path, long uid, long gid, int want_pid, bool pid_required,
                         bool new_pid_ns, const std::vector<int>& pass_fds) {
  if (pass_fds.size() > 64) throw CoreError("EINVAL", "too many fds to pass to the restore stub");
  if (access(stub_path.c_str(), X_OK) != 0) throw_errno("restore stub " + stub_path);
  // Two pipes: the intermediate reports the stub's pid (or -errno) on `info`, the stub says "R" on
  // `ready` once exec'd. One pipe for both would let the stub's byte arrive before the pid.
  int ready[2], info[2];
  if (pipe2(ready, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (pipe2(info, O_CLOEXEC) != 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    throw_errno("pipe2", e);
  }
  const char* path = stub_path.c_str();
  char* const argv[] = {const_cast<char*>("cryopod-stub"), nullptr};
  char* const envp[] = {nullptr};

  pid_t mid = fork();
  if (mid < 0) {
    int e = errno;
    for (int fd : {ready[0], ready[1], info[0], info[1]}) close(fd);
    throw_errno("fork", e);
  }
  if (mid == 0) {
    // Only async-signal-safe calls from here on: the parent is multi-threaded.
    setsid();
    pid_t stub = -1;
    if (new_pid_ns) {
      stub = clone3_fork(CLONE_NEWPID, 0);
      if (stub < 0) {
        pid_t err = -errno;
        ssize_t w = write(info[1], &err, sizeof err);
        (void)w;
        _exit(1);
      }
    } else if (want_pid > 0) {
      stub = clone3_fork(0, want_pid);
      // A task killed by the dump may still be a zombie its parent has not reaped: wait a little.
      for (int i = 0; stub < 0 && errno == EEXIST && pid_required && i < 300; ++i) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, nullptr);
        stub = clone3_fork(0, want_pid);
      }
      if (stub < 0) {
        pid_t err = -errno;
        if (pid_required) {
          ssize_t w = write(info[1], &err, sizeof err);
          (void)w;
          _exit(1);
        }
        stub = fork();
      }
    } else {
      stub = fork();
    }
    if (stub == 0) {
      // The passed fds first, out of the way of stdio and the ready pipe.
      for (size_t i = 0; i < pass_fds.size(); ++i)
        if (dup2(pass_fds[i], kPassedFdBase + (int)i) < 0) _exit(126);
      int nul = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR);
      if (nul < 0) _exit(126);
      dup2(nul, 0);
      dup2(nul, 1);
      dup2(nul, 2);
      // fd 3 is the ready pipe in the stub. dup2 onto itself would keep O_CLOEXEC and exec would close it.
      if (ready[1] == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(ready[1], 3) != 3) _exit(126);
      syscall(SYS_close_range, 4, kPassedFdBase - 1, 0);
      syscall(SYS_close_range, kPassedFdBase + (unsigned)pass_fds.size(), ~0U, 0);
      // Raw syscalls: after a raw clone3 glibc still believes the parent's threads exist, and its
      // setuid()/setgid() would try to broadcast the change to them.
      const char creds_failed = 'C', exec_failed = 'E';
      if ((gid >= 0 && (syscall(SYS_setgroups, 0, nullptr) != 0 || syscall(SYS_setresgid, gid, gid, gid) != 0)) ||
          (uid >= 0 && syscall(SYS_setresuid, uid, uid, uid) != 0)) {
        ssize_t w = write(3, &creds_failed, 1);
        (void)w;
        _exit(126);
      }
      execve(path, argv, envp);
      ssize_t w = write(3, &exec_failed, 1);
      (void)w;
      _exit(127);
    }
    ssize_t w = write(info[1], &stub, sizeof stub);
    (void)w;
    _exit(stub > 0 ? 0 : 1);
  }
  close(ready[1]);
  close(info[1]);
  int status = 0;
  while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  pid_t stub = -1;
  char byte = 0;
  bool got_pid = read_full(info[0], &stub, sizeof stub) && stub > 0;
  close(info[0]);
  if (!got_pid && stub < 0 && stub > -4096) {
    close(ready[0]);
    if (stub == -EEXIST)
      throw CoreError("EPIDTAKEN", "PID " + std::to_string(want_pid) + " is in use (is the checkpointed process still "
                                   "running?): a multi-threaded process is restored only with its own PID and TIDs");
    throw_errno(new_pid_ns ? std::string("clone3 into a new PID namespace for the restore stub")
                           : "clone3 with PID " + std::to_string(want_pid) + " for the restore stub",
                (int)-stub);
  }
  bool started = got_pid && read_full(ready[0], &byte, 1) && byte == 'R';
  close(ready[0]);
  if (!started) {
    if (got_pid) kill(stub, SIGKILL);
    std::string why = byte == 'C'   ? "the saved uid/gid " + std::to_string(uid) + "/" + std::to_string(gid) + " were refused"
                      : byte == 'E' ? "exec failed"
                                    : "it exited before it was ready";
    throw CoreError("ESTUB", "the restore stub " + stub_path + " did not start: " + why);
  }
  pid_ = stub;
}

StubProcess::~StubProcess() {
  if (!released_ && pid_ > 0) kill(pid_, SIGKILL);  // init reaps it: it is not our child
}

}  // namespace cryopod
