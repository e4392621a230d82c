#include "pid_placement.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "clone3.h"
#include "errors.h"
#include "pid_namespace.h"

namespace cryopod {

namespace {

// The helper: for each ID it reads on fd 0, ns_last_pid = ID - 1, and the result (0 or -errno) on fd 1.
// Async-signal-safe calls only: it was forked from a multi-threaded process.
[[noreturn]] void helper_loop() {
  for (;;) {
    int32_t want = 0;
    if (read(0, &want, sizeof want) != (ssize_t)sizeof want) _exit(0);
    char text[16];
    int len = 0;
    char digits[16];
    int nd = 0;
    for (uint32_t v = (uint32_t)(want - 1); nd == 0 || v > 0; v /= 10) digits[nd++] = (char)('0' + v % 10);
    while (nd > 0) text[len++] = digits[--nd];
    int32_t result = 0;
    int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      result = -errno;
    } else {
      if (write(fd, text, len) != len) result = -errno;
      close(fd);
    }
    if (write(1, &result, sizeof result) != (ssize_t)sizeof result) _exit(1);
  }
}

bool read_int(int fd, int32_t& v) {
  for (;;) {
    ssize_t n = read(fd, &v, sizeof v);
    if (n < 0 && errno == EINTR) continue;
    return n == (ssize_t)sizeof v;
  }
}

}  // namespace

PidPlacement::PidPlacement(pid_t member, int spare) {
  if (in_our_pid_namespace(member)) return;
  if (geteuid() != 0) throw CoreError("EPERM", "restoring into another PID namespace (a container's) needs root");
  std::string path = "/proc/" + std::to_string(member) + "/ns/pid";
  int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) throw_errno_at("open", path);
  int down[2], up[2];
  if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) {
    int e = errno;
    close(ns);
    throw_errno("pipe2", e);
  }
  pid_t mid = fork();
  if (mid == 0) {
    // setns(CLONE_NEWPID) moves only the children to come: the helper is forked into the namespace,
    // with an ID no saved task needs. It outlives this intermediate (init reaps it).
    int32_t result;
    if (setns(ns, CLONE_NEWPID) != 0) {
      result = -errno;
    } else {
      pid_t h = -1;
      for (int id = spare; id < spare + 64; ++id) {
        h = clone3_fork(0, id);
        if (h >= 0 || errno != EEXIST) break;
      }
      if (h == 0) {
        // A copy of the restorer's memory in someone else's namespace: nobody there may read it.
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (dup2(down[0], 0) != 0 || dup2(up[1], 1) != 1) _exit(1);
        syscall(SYS_close_range, 2, ~0U, 0);
        helper_loop();
      }
      result = h > 0 ? h : -errno;
    }
    ssize_t w = write(up[1], &result, sizeof result);
    (void)w;
    _exit(0);
  }
  int fork_err = errno;
  close(ns);
  close(down[0]);
  close(up[1]);
  int32_t helper = mid < 0 ? -fork_err : 0;
  if (mid > 0) {
    int status;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!read_int(up[0], helper)) helper = -EIO;
  }
  if (helper <= 0) {
    close(down[1]);
    close(up[0]);
    throw_errno("a helper in the PID namespace of " + std::to_string(member), (int)-helper);
  }
  own_ns_ = false;
  helper_ = helper;
  to_helper_ = down[1];
  from_helper_ = up[0];
}

PidPlacement::~PidPlacement() { finish(); }

void PidPlacement::finish() {
  if (helper_ < 0) return;
  close(to_helper_);  // it exits on EOF; killed too, in case it is stuck
  close(from_helper_);
  kill(helper_, SIGKILL);
  helper_ = -1;
}

void PidPlacement::set_next(int want) {
  if (helper_ < 0) throw CoreError("EINVAL", "the PID namespace helper has already finished");
  int32_t w = want, result = -EIO;
  if (write(to_helper_, &w, sizeof w) != (ssize_t)sizeof w || !read_int(from_helper_, result)) result = -EIO;
  if (result < 0) throw_errno("ns_last_pid = " + std::to_string(want - 1) + " in the restored PID namespace", (int)-result);
}

pid_t PidPlacement::clone_with_id(RemoteSyscalls& rs, uint64_t slot, uint64_t flags, int want, const std::string& what,
                                  const char* taken_code) {
  pid_t caller = rs.task().pid();
  CloneArgs ca{};
  ca.flags = flags;
  ca.exit_signal = (flags & CLONE_THREAD) ? 0 : SIGCHLD;
  if (own_namespace()) {
    pid_t tid = want;
    remote_write(caller, slot, &tid, sizeof tid);
    ca.set_tid = slot;
    ca.set_tid_size = 1;
  } else {
    set_next(want);
  }
  remote_write(caller, slot + 64, &ca, sizeof ca);
  long got = rs.call(SYS_clone3, slot + 64, sizeof ca);
  auto taken = [&]() {
    return CoreError(taken_code, what + " cannot be restored: ID " + std::to_string(want) +
                                     " is in use (is the checkpointed process still running?)");
  };
  if (got == -EEXIST) throw taken();
  if (got < 0) throw_errno("in the restored task: clone3 of " + what, (int)-got);
  pid_t created = rs.task().last_created();
  if (created <= 0) throw CoreError("EREMOTE", "clone3 of " + what + " reported no new task");
  if (got != want) {
    // ns_last_pid only says where to start looking: the ID was taken, the next free one came out.
    kill(created, SIGKILL);
    throw taken();
  }
  return created;
}

}  // namespace cryopod
