#include "stub_process.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

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

StubProcess::StubProcess(const std::string& stub_path, long uid, long gid) {
  if (access(stub_path.c_str(), X_OK) != 0) throw_errno("restore stub " + stub_path);
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) throw_errno("pipe2");
  const char* path = stub_path.c_str();
  char* const argv[] = {const_cast<char*>("cryopod-stub"), nullptr};
  char* const envp[] = {nullptr};

  pid_t mid = fork();
  if (mid < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    throw_errno("fork", e);
  }
  if (mid == 0) {
    // Only async-signal-safe calls from here on: the parent is multi-threaded.
    setsid();
    pid_t stub = fork();
    if (stub == 0) {
      int nul = open("/dev/null", O_RDWR);
      if (nul < 0) _exit(126);
      dup2(nul, 0);
      dup2(nul, 1);
      dup2(nul, 2);
      if (dup2(ready[1], 3) != 3) _exit(126);
      syscall(SYS_close_range, 4, ~0U, 0);
      if (gid >= 0 && (setgroups(0, nullptr) != 0 || setgid((gid_t)gid) != 0)) _exit(126);
      if (uid >= 0 && setuid((uid_t)uid) != 0) _exit(126);
      execve(path, argv, envp);
      _exit(127);
    }
    ssize_t w = write(ready[1], &stub, sizeof stub);
    (void)w;
    _exit(stub > 0 ? 0 : 1);
  }
  close(ready[1]);
  int status = 0;
  while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  pid_t stub = -1;
  char byte = 0;
  bool got_pid = read_full(ready[0], &stub, sizeof stub) && stub > 0;
  bool started = got_pid && read_full(ready[0], &byte, 1) && byte == 'R';
  close(ready[0]);
  if (!started) {
    if (got_pid) kill(stub, SIGKILL);
    throw CoreError("ESTUB", "the restore stub " + stub_path + " did not start (exec failed or credentials refused)");
  }
  pid_ = stub;
}

StubProcess::~StubProcess() {
  if (!released_ && pid_ > 0) kill(pid_, SIGKILL);  // init reaps it: it is not our child
}

}  // namespace cryopod
