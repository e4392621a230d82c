/* Reference: memcpy of N MiB between two pre-faulted buffers; prints bytes per second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

int main(int argc, char** argv) {
  size_t bytes = (size_t)atol(argc > 1 ? argv[1] : "256") << 20;
  char* a = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  char* b = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (a == MAP_FAILED || b == MAP_FAILED) return 1;
  memset(a, 0x5a, bytes);
  memset(b, 0xa5, bytes);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  memcpy(b, a, bytes);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%.0f\n", bytes / s + (b[bytes / 2] == 0)); /* read b so the copy is not optimized away */
  return 0;
}
