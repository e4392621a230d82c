/*
 * A stand-in for a container whose processes live in a PID namespace of their own (as every container's
 * do): an init (PID 1 there) and a worker (PID 2) joined by a pipe. The worker counts every 20 ms and
 * sends each value down the pipe; the init keeps 4 MiB of patterned heap and writes
 * "<counter> <pattern ok> <its getpid()> <the worker's PID as it sees it>" to a file, so a test sees both
 * processes and the pipe still work after a checkpoint, and with which IDs.
 *   counter-family <pidfile> <statefile>
 * The outer process leaves the session, makes the namespace, writes the init's PID (in ours) to
 * <pidfile> and exits: the init is nobody's child here (the dumper refuses to dump its own child).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static int write_file(const char *path, const char *buf, int n) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return -1;
  int ok = write(fd, buf, n) == n;
  close(fd);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  if (fork() != 0) return 0;
  setsid();
  syscall(SYS_close_range, 3, ~0U, 0); /* like a container's init: no fds inherited from the test runner */
  if (unshare(CLONE_NEWPID) != 0) return 1;
  pid_t init = fork();
  if (init < 0) return 1;
  if (init > 0) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", init);
    return write_file(argv[1], buf, n) == 0 ? 0 : 1;
  }

  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t worker = fork();
  if (worker == 0) {
    close(p[0]);
    struct timespec ts = {0, 20 * 1000 * 1000};
    for (unsigned long counter = 1;; counter++) {
      if (write(p[1], &counter, sizeof counter) != sizeof counter) _exit(3);
      nanosleep(&ts, NULL);
    }
  }
  close(p[1]);
  size_t size = 4 * MIB;
  unsigned char *heap = malloc(size);
  for (size_t i = 0; i < size; i++) heap[i] = (unsigned char)(i * 7 + 3);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
  for (;;) {
    unsigned long counter;
    if (read(p[0], &counter, sizeof counter) != sizeof counter) return 4;
    int ok = 1;
    for (size_t i = 0; i < size; i += 4096) ok &= heap[i] == (unsigned char)(i * 7 + 3);
    char buf[96];
    int n = snprintf(buf, sizeof buf, "%lu %d %d %d\n", counter, ok, getpid(), worker);
    if (write_file(tmp, buf, n) == 0) rename(tmp, argv[2]); /* readers never see a half-written file */
  }
}
