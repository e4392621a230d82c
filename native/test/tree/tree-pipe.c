/*
 * tree-pipe: a parent, a child and a grandchild joined by pipes. The grandchild writes a sequence of
 * numbers into pipe A, the child forwards each one (+1) into pipe B, the parent reads B and checks the
 * sequence has no gap and no repeat. After restore (same PIDs, pipes reconnected, bytes in flight kept)
 * the sequence must go on where it was. Also checks getppid() and the process group/session layout.
 *   tree-pipe <workdir>    ready: "<parent pid> <child pid> <grandchild pid>"
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tree-common.h"

static void write_all(int fd, const void* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);
    p = (const char*)p + w;
    n -= (size_t)w;
  }
}

static int read_all(int fd, void* p, size_t n) {
  while (n) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p = (char*)p + r;
    n -= (size_t)r;
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  workdir = argv[1];
  close_inherited_fds();
  setsid();
  int a[2], b[2], ids[2];
  if (pipe(a) || pipe(b) || pipe(ids)) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(b[0]);
    pid_t grandchild = fork();
    if (grandchild == 0) {
      close(a[0]);
      close(b[1]);
      pid_t me = getpid();
      write_all(ids[1], &me, sizeof me);
      for (unsigned long n = 0;; n++) {
        write_all(a[1], &n, sizeof n);
        usleep(2000);
      }
    }
    close(a[1]);
    setpgid(0, 0); /* the child leads a process group of its own */
    for (;;) {
      unsigned long n;
      if (read_all(a[0], &n, sizeof n)) _exit(4);
      n += 1;
      write_all(b[1], &n, sizeof n);
    }
  }
  close(a[0]);
  close(a[1]);
  close(b[1]);
  pid_t grandchild;
  if (read_all(ids[0], &grandchild, sizeof grandchild)) return 1;
  char ready[128];
  snprintf(ready, sizeof ready, "%d %d %d\n", getpid(), child, grandchild);
  put_file("ready", ready);
  unsigned long expect = 1, after_check = 0;
  char failure[256] = "";
  for (;;) {
    unsigned long n;
    if (read_all(b[0], &n, sizeof n)) {
      snprintf(failure, sizeof failure, "pipe B closed after %lu numbers", expect - 1);
      break;
    }
    if (n != expect && !failure[0]) snprintf(failure, sizeof failure, "got %lu, expected %lu (gap or repeat)", n, expect);
    expect = n + 1;
    if (check_requested() && ++after_check > 200) break; /* 200 more numbers after the restore */
  }
  if (!failure[0] && getpgid(child) != child) snprintf(failure, sizeof failure, "child is not its group's leader");
  if (!failure[0] && getsid(0) != getpid()) snprintf(failure, sizeof failure, "parent is not its session's leader");
  char result[512];
  snprintf(result, sizeof result, failure[0] ? "FAIL: %s\n" : "PASS%s\n", failure);
  put_file("result", result);
  kill(child, SIGKILL);
  kill(grandchild, SIGKILL);
  return failure[0] ? 1 : 0;
}
