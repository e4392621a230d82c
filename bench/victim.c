/*
 * Benchmark victim: holds N MiB of private anonymous memory, every page touched and different (nothing
 * for a zero-page check to skip). `victim <MiB> <ready-file> [tick-log]`; the ready file gets the pid.
 *
 * Without a tick log it sleeps. With one it is a ticker: it wakes every millisecond and, whenever the
 * gap since its last tick was over 3 ms, appends "<CLOCK_REALTIME ns> <gap ns>\n" to the log (O_APPEND,
 * so a restored copy appends after its own older lines). The bench reads the stall a dump caused from
 * inside the victim, and when a restored victim first ran (its first line after the restore).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: victim <MiB> <ready-file> [tick-log]\n");
    return 2;
  }
  size_t bytes = (size_t)atol(argv[1]) << 20;
  unsigned long* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < bytes / sizeof *p; i++) p[i] = i * 0x9e3779b97f4a7c15UL + 1;
  for (int fd = 3; fd < 1024; fd++) close(fd); /* only stdio: nothing the dumper would refuse */
  int log = -1;
  if (argc == 4 && (log = open(argv[3], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) return 1;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
  FILE* f = fopen(tmp, "w");
  if (!f) return 1;
  fprintf(f, "%d\n", getpid());
  fclose(f);
  rename(tmp, argv[2]);
  if (log < 0)
    for (;;) pause();
  long long last = now_ns(CLOCK_MONOTONIC);
  for (;;) {
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL);
    long long t = now_ns(CLOCK_MONOTONIC);
    if (t - last > 3000000) {
      char line[64];
      int n = snprintf(line, sizeof line, "%lld %lld\n", now_ns(CLOCK_REALTIME), t - last);
      if (write(log, line, (size_t)n) != n) return 1;
    }
    last = t;
  }
}
