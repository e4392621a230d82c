/*
 * gen-writer: proves a checkpoint taken while it runs is one consistent instant.
 *
 *   gen-writer <workdir> <MiB> <threads>
 *
 * Each thread owns a slice of pages and sweeps it forever: generation g+1 is stamped on page i only
 * after checking that page i still holds generation g. In memory that is always true, whatever instant
 * is frozen; an image made of pages taken at different instants (some after the writer moved on) holds a
 * page that is ahead of or behind its neighbours, and the restored writer trips over it within one
 * sweep. After <workdir>/check appears, every thread does two more full sweeps, then the result
 * (PASS or FAIL: ...) goes to <workdir>/result. Ready: <workdir>/ready holds the pid.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096

struct page {
  unsigned long gen;
  unsigned long index;
  unsigned long check;  /* gen ^ index ^ magic: a torn or foreign page shows here too */
};

struct worker {
  pthread_t thread;
  unsigned char* base;
  size_t pages;
  size_t first;
  volatile unsigned long gen;
  volatile unsigned long gen_at_check;
  volatile int done;
  char failure[256];
};

static const unsigned long MAGIC = 0x9e3779b97f4a7c15UL;
static const char* workdir;
static atomic_int check_seen;

static void write_file(const char* name, const char* text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
  rename(tmp, path);
}

static void* sweep(void* arg) {
  struct worker* w = arg;
  for (;;) {
    unsigned long g = w->gen;
    for (size_t i = 0; i < w->pages; i++) {
      struct page* p = (struct page*)(w->base + i * PAGE);
      unsigned long idx = w->first + i;
      if (!w->failure[0] && (p->gen != g || p->index != (g ? idx : 0) || p->check != (g ? (g ^ idx ^ MAGIC) : 0)))
        snprintf(w->failure, sizeof w->failure, "page %lu holds generation %lu (index %lu), expected %lu", idx, p->gen,
                 p->index, g);
      p->gen = g + 1;
      p->index = idx;
      p->check = (g + 1) ^ idx ^ MAGIC;
    }
    w->gen = g + 1;
    if (atomic_load(&check_seen)) {
      if (!w->gen_at_check) w->gen_at_check = w->gen;
      if (w->gen >= w->gen_at_check + 2) {
        w->done = 1;
        return NULL;
      }
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: gen-writer <workdir> <MiB> <threads>\n");
    return 2;
  }
  workdir = argv[1];
  size_t bytes = (size_t)atol(argv[2]) << 20;
  int nthreads = atoi(argv[3]);
  if (nthreads < 1 || nthreads > 64) return 2;
  for (int fd = 3; fd < 1024; fd++) close(fd);
  unsigned char* mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  memset(mem, 0, bytes);
  size_t pages = bytes / PAGE, per = pages / nthreads;
  struct worker* ws = calloc(nthreads, sizeof *ws);
  for (int t = 0; t < nthreads; t++) {
    ws[t].first = t * per;
    ws[t].pages = t == nthreads - 1 ? pages - t * per : per;
    ws[t].base = mem + ws[t].first * PAGE;
    pthread_create(&ws[t].thread, NULL, sweep, &ws[t]);
  }
  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", getpid());
  write_file("ready", pid);
  char check[4096];
  snprintf(check, sizeof check, "%s/check", workdir);
  for (;;) {
    struct stat st;
    if (!atomic_load(&check_seen) && stat(check, &st) == 0) atomic_store(&check_seen, 1);
    int done = 1;
    for (int t = 0; t < nthreads; t++) done &= ws[t].done;
    if (done) break;
    usleep(2000);
  }
  for (int t = 0; t < nthreads; t++) {
    if (ws[t].failure[0]) {
      char msg[512];
      snprintf(msg, sizeof msg, "FAIL: thread %d: %s\n", t, ws[t].failure);
      write_file("result", msg);
      return 1;
    }
  }
  write_file("result", "PASS\n");
  return 0;
}
