/*
 * A stand-in for a container's main process in the agent's integration tests: it keeps state (a counter
 * and 4 MiB of patterned heap) and runs, writing "<counter> <pattern ok>" to a file every 20 ms, so a test
 * sees that it still runs (the counter grows) and that its memory is intact after a checkpoint.
 *   counter <pidfile> <statefile>
 * It double-forks itself away from its parent (the dumper refuses to dump its own child) and writes the
 * final PID to <pidfile>.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MIB (1024 * 1024)

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  if (fork() != 0) return 0; /* the parent returns at once; the child leaves the session */
  setsid();
  if (fork() != 0) return 0; /* the grandchild is re-parented away from the test */
  syscall(SYS_close_range, 3, ~0U, 0); /* like a container's init: no fds inherited from the test runner */
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%d\n", getpid());
  int pf = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (pf < 0 || write(pf, buf, n) != n) return 1;
  close(pf);

  size_t size = 4 * MIB;
  unsigned char *heap = malloc(size);
  for (size_t i = 0; i < size; i++) heap[i] = (unsigned char)(i * 7 + 3);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
  unsigned long counter = 0;
  struct timespec ts = {0, 20 * 1000 * 1000};
  for (;;) {
    counter++;
    int ok = 1;
    for (size_t i = 0; i < size; i += 4096) ok &= heap[i] == (unsigned char)(i * 7 + 3);
    n = snprintf(buf, sizeof buf, "%lu %d\n", counter, ok);
    int sf = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (sf >= 0) {
      if (write(sf, buf, n) == n) rename(tmp, argv[2]); /* readers never see a half-written file */
      close(sf);
    }
    nanosleep(&ts, NULL);
  }
}
