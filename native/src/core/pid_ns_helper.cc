#include "pid_ns_helper.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "clone3.h"
#include "errors.h"

namespace cryopod {

namespace {

constexpr int kKeptCap = 40;  // CAP_CHECKPOINT_RESTORE
constexpr int kSysctlFd = 2;  // where the helper keeps its ns_last_pid

// Everything below runs in a child forked from a multi-threaded process: raw syscalls only.

// A mount namespace of its own whose root is an empty tmpfs (the host's is detached from it).
int isolate_mounts() {
  if (unshare(CLONE_NEWNS) != 0) return -errno;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return -errno;
  // Any directory will do as the mount point: the mount is private to this namespace.
  const char* at = "/tmp";
  if (mount("cryopod-empty", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0500") != 0) {
    at = "/dev";
    if (mount("cryopod-empty", at, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0500") != 0) return -errno;
  }
  if (chdir(at) != 0) return -errno;
  if (syscall(SYS_pivot_root, ".", ".") != 0) return -errno;
  if (umount2(".", MNT_DETACH) != 0) return -errno;
  if (chdir("/") != 0) return -errno;
  return 0;
}

// Every capability but kKeptCap out of the bounding, ambient, inheritable, permitted and effective sets.
int drop_capabilities() {
  for (int cap = 0; cap < 64; ++cap)
    if (cap != kKeptCap && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return -errno;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return -errno;
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[kKeptCap / 32].effective = data[kKeptCap / 32].permitted = 1u << (kKeptCap % 32);
  if (syscall(SYS_capset, &head, data) != 0) return -errno;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
  return 0;
}

// Serves requests: for each ID read on fd 0, ns_last_pid = ID - 1, and the result (0 or -errno) on fd 1.
[[noreturn]] void serve() {
  for (;;) {
    int32_t want = 0;
    if (read(0, &want, sizeof want) != (ssize_t)sizeof want) _exit(0);
    char digits[16], text[16];
    int nd = 0, len = 0;
    for (uint32_t v = (uint32_t)(want - 1); nd == 0 || v > 0; v /= 10) digits[nd++] = (char)('0' + v % 10);
    while (nd > 0) text[len++] = digits[--nd];
    int32_t result = pwrite(kSysctlFd, text, len, 0) == len ? 0 : -errno;
    if (write(1, &result, sizeof result) != (ssize_t)sizeof result) _exit(1);
  }
}

// The helper itself: made harmless (see the header), then ready (0 on `status`), then serving.
[[noreturn]] void helper_main(int sysctl, int down, int up, int status) {
  // A copy of the restorer's memory in someone else's namespace: nobody there may read it.
  int32_t result = prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -errno;
  if (result == 0) result = isolate_mounts();
  if (result == 0) result = drop_capabilities();
  if (result == 0 && (dup2(down, 0) != 0 || dup2(up, 1) != 1 || dup2(sysctl, kSysctlFd) != kSysctlFd)) result = -errno;
  ssize_t w = write(status, &result, sizeof result);
  (void)w;
  if (result != 0) _exit(1);
  syscall(SYS_close_range, kSysctlFd + 1, ~0U, 0);
  serve();
}

bool read_int(int fd, int32_t& v) {
  for (;;) {
    ssize_t n = read(fd, &v, sizeof v);
    if (n < 0 && errno == EINTR) continue;
    return n == (ssize_t)sizeof v;
  }
}

}  // namespace

PidNamespaceHelper::PidNamespaceHelper(pid_t member, int spare) {
  std::string path = "/proc/" + std::to_string(member) + "/ns/pid";
  int ns = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) throw_errno_at("open", path);
  // Opened here, in the host's mount namespace; the write acts on the writer's PID namespace when it is made.
  int sysctl = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
  int down[2] = {-1, -1}, up[2] = {-1, -1}, status[2] = {-1, -1};
  auto close_all = [&]() {
    for (int fd : {ns, sysctl, down[0], down[1], up[0], up[1], status[0], status[1]})
      if (fd >= 0) close(fd);
  };
  if (sysctl < 0 || pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0 || pipe2(status, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    throw_errno("ns_last_pid and pipes for a PID namespace helper", e);
  }
  pid_t mid = fork();
  if (mid == 0) {
    // setns(CLONE_NEWPID) moves only the children to come: the helper is forked into the namespace,
    // with an ID no saved task needs. This intermediate stays its parent until it ends and reaps it:
    // were it to exit first, the helper would become a child of the namespace's init, the tenant's
    // own process (a SIGCHLD and a zombie it never asked for).
    int32_t result;
    // Our ends: held here, they would keep the helper from seeing its pipe close.
    close(down[1]);
    close(up[0]);
    if (setns(ns, CLONE_NEWPID) != 0) {
      result = -errno;
    } else {
      pid_t h = -1;
      for (int id = spare; id < spare + 64; ++id) {
        h = clone3_fork(0, id);
        if (h >= 0 || errno != EEXIST) break;
      }
      if (h == 0) helper_main(sysctl, down[0], up[1], status[1]);
      result = h > 0 ? h : -errno;
      // The helper's word on its own hardening comes first: a helper that could not drop what it must
      // is not handed out.
      int32_t ready = -EIO;
      close(status[1]);  // so a helper that dies unready is an EOF here
      if (h > 0 && (!read_int(status[0], ready) || ready != 0)) {
        kill(h, SIGKILL);
        result = ready != 0 ? ready : -EIO;
      }
    }
    ssize_t w = write(up[1], &result, sizeof result);
    (void)w;
    if (result > 0) {
      int st;
      while (waitpid((pid_t)result, &st, 0) < 0 && errno == EINTR) {
      }
    }
    _exit(0);
  }
  int fork_err = errno;
  int32_t helper = mid < 0 ? -fork_err : 0;
  if (mid > 0) {
    close(up[1]);
    up[1] = -1;
    close(status[1]);
    status[1] = -1;
    if (!read_int(up[0], helper)) helper = -EIO;
  }
  int to = down[1], from = up[0];
  down[1] = up[0] = -1;
  close_all();
  mid_ = mid;
  if (helper <= 0) {
    close(to);
    close(from);
    reap();
    throw_errno("a helper in the PID namespace of " + std::to_string(member), (int)-helper);
  }
  pid_ = helper;
  to_ = to;
  from_ = from;
}

PidNamespaceHelper::~PidNamespaceHelper() { finish(); }

void PidNamespaceHelper::finish() {
  if (pid_ >= 0) {
    close(to_);  // it exits on EOF; killed too, in case it is stuck
    close(from_);
    kill(pid_, SIGKILL);
    pid_ = -1;
  }
  reap();
}

void PidNamespaceHelper::reap() {
  if (mid_ <= 0) return;
  // The intermediate reaps the helper, then exits: both are gone once this returns.
  int st;
  while (waitpid(mid_, &st, 0) < 0 && errno == EINTR) {
  }
  mid_ = -1;
}

void PidNamespaceHelper::set_next(int want) {
  if (pid_ < 0) throw CoreError("EINVAL", "the PID namespace helper has already finished");
  int32_t w = want, result = -EIO;
  // A dead helper (anything with CAP_KILL in the tenant's namespace can kill it) is an EPIPE or EOF here:
  // the restore fails, naming it, and its half-built stub is killed with it.
  if (write(to_, &w, sizeof w) != (ssize_t)sizeof w || !read_int(from_, result))
    throw CoreError("EIO", "the PID namespace helper (pid " + std::to_string(pid_) +
                               ") is gone, killed from inside the restored PID namespace: IDs cannot be placed there");
  if (result < 0) throw_errno("ns_last_pid = " + std::to_string(want - 1) + " in the restored PID namespace", (int)-result);
}

}  // namespace cryopod
