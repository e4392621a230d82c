/*
 * cow-shm: a parent and a child sharing memory three ways:
 *   - 16 MiB of private anonymous memory written by the parent before fork and never by the child: its
 *     pages stay copy-on-write shared (the test checks the PFNs from outside after restore);
 *   - 1 MiB of MAP_SHARED|MAP_ANONYMOUS memory and a 1 MiB memfd mapping, where each process bumps a
 *     counter of its own and watches the other's: both must keep seeing each other after restore.
 *   cow-shm <workdir>   ready: "<parent pid> <child pid> <private region address>"
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "tree-common.h"

#define PRIVATE_BYTES (16UL << 20)
#define SHARED_BYTES (1UL << 20)

struct counters {
  volatile unsigned long parent, child;
};

static unsigned long pattern(size_t i) { return i * 0x9e3779b97f4a7c15UL + 7; }

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  workdir = argv[1];
  close_inherited_fds();
  unsigned long* priv = mmap(NULL, PRIVATE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  struct counters* anon = mmap(NULL, SHARED_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int mfd = memfd_create("cryopod-test", 0);
  if (priv == MAP_FAILED || anon == MAP_FAILED || mfd < 0 || ftruncate(mfd, SHARED_BYTES)) return 1;
  struct counters* mem = mmap(NULL, SHARED_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (mem == MAP_FAILED) return 1;
  close(mfd); /* only the mapping holds the memfd */
  for (size_t i = 0; i < PRIVATE_BYTES / sizeof *priv; i++) priv[i] = pattern(i);
  pid_t child = fork();
  if (child == 0) {
    for (;;) {
      anon->child++;
      mem->child++;
      usleep(1000);
    }
  }
  char ready[128];
  snprintf(ready, sizeof ready, "%d %d %p\n", getpid(), child, (void*)priv);
  put_file("ready", ready);
  char failure[256] = "";
  while (!check_requested()) {
    anon->parent++;
    mem->parent++;
    usleep(1000);
  }
  /* After restore: the child's counters must still move in both regions, seen from here. */
  unsigned long a0 = anon->child, m0 = mem->child;
  for (int i = 0; i < 200 && (anon->child == a0 || mem->child == m0); i++) usleep(5000);
  if (anon->child == a0) snprintf(failure, sizeof failure, "the child's MAP_SHARED counter stopped at %lu", a0);
  else if (mem->child == m0) snprintf(failure, sizeof failure, "the child's memfd counter stopped at %lu", m0);
  for (size_t i = 0; !failure[0] && i < PRIVATE_BYTES / sizeof *priv; i++)
    if (priv[i] != pattern(i)) snprintf(failure, sizeof failure, "private word %zu changed", i);
  char result[512];
  snprintf(result, sizeof result, failure[0] ? "FAIL: %s\n" : "PASS%s\n", failure);
  put_file("result", result);
  kill(child, SIGKILL);
  return failure[0] ? 1 : 0;
}
