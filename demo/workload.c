/*
 * The demo workload: a single-threaded process with state worth checkpointing.
 *
 *   usage: workload LOGFILE [MIB]          (MIB defaults to 256)
 *
 * It maps MIB MiB of private anonymous memory, fills every 64-bit word with a deterministic non-zero
 * pattern, and computes the checksum of the whole region once. Then, every 100 ms, it increments a counter
 * and appends one line to LOGFILE (opened once, O_WRONLY|O_APPEND|O_CREAT, the fd kept open):
 *
 *   tick <n> checksum <16 hex digits> pid <pid>
 *
 * The checksum is recomputed from memory, over the whole region, every 20 ticks (~2 s) and on the first
 * tick after a checkpoint/restore, detected as a change of PID or a pause of more than a second between
 * two ticks. So a restored process prints a checksum read from its restored pages, never a cached one.
 * A tick line is written with one write(2), so a reader never sees half a line. At start it closes every
 * fd above 2 that it inherited, so that its open files are stdio (/dev/null in the demo) and the log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 100000000L
#define RECOMPUTE_EVERY 20

static uint64_t pattern(uint64_t i) { /* splitmix64 of the word index; never zero */
  uint64_t z = i + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z ? z : 1;
}

static uint64_t checksum(const uint64_t *w, size_t n) { /* Fletcher-like, order-sensitive */
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i < n; i++) {
    a += w[i];
    b += a;
  }
  return a ^ (b * 0x9e3779b97f4a7c15ULL);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  /* stderr is /dev/null in the demo; the exit status is what the demo sees. */
  fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s LOGFILE [MIB]\n", argv[0]);
    return 2;
  }
  size_t mib = argc == 3 ? strtoul(argv[2], NULL, 10) : 256;
  if (mib == 0 || mib > 65536) {
    fprintf(stderr, "workload: MIB must be 1..65536\n");
    return 2;
  }
  /* Drop whatever fds the launcher leaked (a shell's pipes, say): the checkpoint holds only ours. */
  close_range(3, ~0U, 0);
  int log = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (log < 0) die(argv[1]);

  size_t bytes = mib << 20, words = bytes / sizeof(uint64_t);
  uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  for (size_t i = 0; i < words; i++) mem[i] = pattern(i);

  uint64_t sum = checksum(mem, words);
  uint64_t tick = 0;
  pid_t last_pid = getpid(); /* a syscall in glibc >= 2.25: a restored process sees its new PID */
  double last = now();

  for (;;) {
    struct timespec ts = {0, TICK_NS};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    tick++;
    pid_t pid = getpid();
    double t = now();
    if (tick % RECOMPUTE_EVERY == 0 || pid != last_pid || t - last > 1.0) sum = checksum(mem, words);
    last_pid = pid;
    last = t;

    char line[96];
    int len = snprintf(line, sizeof line, "tick %llu checksum %016llx pid %d\n", (unsigned long long)tick,
                       (unsigned long long)sum, (int)pid);
    if (write(log, line, (size_t)len) != len) die("write");
  }
}
