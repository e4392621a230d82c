/* Shared by the process-tree victims: the same protocol as native/test/victims/victim.h (ready, check,
 * result files in a work dir), for programs made of several processes. */
#ifndef TREE_COMMON_H
#define TREE_COMMON_H
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static const char* workdir;

static void put_file(const char* name, const char* text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", workdir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE* f = fopen(tmp, "w");
  if (!f) return;
  fputs(text, f);
  fclose(f);
  rename(tmp, path);
}

static int check_requested(void) {
  char path[4096];
  struct stat st;
  snprintf(path, sizeof path, "%s/check", workdir);
  return stat(path, &st) == 0;
}

static void close_inherited_fds(void) {
  for (int fd = 3; fd < 1024; fd++) close(fd);
}
#endif
