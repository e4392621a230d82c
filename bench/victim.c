/*
 * Benchmark victim: holds N MiB of private anonymous memory, every page touched and different (nothing
 * for a zero-page check to skip), then sleeps. `victim <MiB> <ready-file>`; the ready file gets the pid.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: victim <MiB> <ready-file>\n");
    return 2;
  }
  size_t bytes = (size_t)atol(argv[1]) << 20;
  unsigned long* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < bytes / sizeof *p; i++) p[i] = i * 0x9e3779b97f4a7c15UL + 1;
  for (int fd = 3; fd < 1024; fd++) close(fd); /* only stdio: nothing the dumper would refuse */
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
  FILE* f = fopen(tmp, "w");
  if (!f) return 1;
  fprintf(f, "%d\n", getpid());
  fclose(f);
  rename(tmp, argv[2]);
  for (;;) pause();
}
