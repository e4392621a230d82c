/*
 * unix-tree: objects shared between a parent and its child, as servers share them (nginx's master and
 * workers, postgres's postmaster and backends):
 *   - a stream socketpair whose ends are in different processes, bytes queued both ways at dump time;
 *   - a seqpacket socketpair likewise (message boundaries kept);
 *   - a unix listening socket inherited by the child (one open file in both), dup'd once more in the
 *     parent; only the child accepts;
 *   - a regular file opened once before fork: after restore both still share its offset and its status
 *     flags (O_NONBLOCK set by the child is seen by the parent).
 *   unix-tree <workdir>    ready: "<parent pid> <child pid>"; on <workdir>/check: result PASS or FAIL why
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "tree-common.h"

static int stream[2], seq[2], listener, shared_file;

static int expect_read(int fd, const char* want, char* why, size_t whylen, const char* what) {
  char buf[256] = {0};
  ssize_t n = read(fd, buf, strlen(want)); /* exactly: what the peer sends next must stay queued */
  if (n != (ssize_t)strlen(want) || memcmp(buf, want, strlen(want)) != 0) {
    snprintf(why, whylen, "%s: read %zd bytes '%s', expected '%s' (%s)", what, n, n > 0 ? buf : "", want, n < 0 ? strerror(errno) : "");
    return -1;
  }
  return 0;
}

static void child(void) {
  close(stream[0]);
  close(seq[0]);
  if (write(stream[1], "to-parent", 9) != 9 || write(seq[1], "seq-a", 5) != 5 || write(seq[1], "seq-b", 5) != 5) _exit(3);
  if (write(shared_file, "B", 1) != 1) _exit(3);
  /* Nothing is read before the check (after the restore): the bytes queued for us stay queued. */
  while (!check_requested()) usleep(10000);
  char why[512] = "";
  char go = 0;
  if (expect_read(stream[1], "to-child", why, sizeof why, "child, stream") == 0 &&
      expect_read(seq[1], "seq-parent", why, sizeof why, "child, seqpacket") == 0) {
    /* The parent's go: it has written its byte into the shared file. */
    if (read(stream[1], &go, 1) != 1 || go != 'G') snprintf(why, sizeof why, "child: no go from the parent");
  }
  if (!why[0]) {
    /* The listener: the test connected to it; accept and answer. */
    int c = accept(listener, NULL, NULL);
    if (c < 0 || write(c, "served by the child", 19) != 19) snprintf(why, sizeof why, "child: accept: %s", strerror(errno));
    if (c >= 0) close(c);
  }
  if (!why[0]) {
    /* The shared file: write after the parent, at the offset the parent left. */
    if (write(shared_file, "D", 1) != 1) snprintf(why, sizeof why, "child: write to the shared file: %s", strerror(errno));
    fcntl(shared_file, F_SETFL, fcntl(shared_file, F_GETFL) | O_NONBLOCK);
  }
  const char* msg = why[0] ? why : "ok";
  if (write(stream[1], msg, strlen(msg)) < 0) _exit(5);
  for (;;) pause();
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  workdir = argv[1];
  close_inherited_fds();
  setsid();
  char path[4096], file[4096];
  snprintf(path, sizeof path, "%s/listen.sock", workdir);
  snprintf(file, sizeof file, "%s/shared.txt", workdir);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return 1;
  memcpy(sa.sun_path, path, strlen(path));
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq)) return 1;
  listener = socket(AF_UNIX, SOCK_STREAM, 0);
  if (listener < 0 || bind(listener, (struct sockaddr*)&sa, sizeof sa) || listen(listener, 8)) return 1;
  shared_file = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (shared_file < 0 || write(shared_file, "A", 1) != 1) return 1;
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) child();
  close(stream[1]);
  close(seq[1]);
  if (dup2(listener, 9) != 9) return 1; /* a second fd on the same listener, in the same process */
  if (write(stream[0], "to-child", 8) != 8 || write(seq[0], "seq-parent", 10) != 10) return 1;
  /* Ready once the child wrote its side: its byte in the shared file moved the shared offset to 2. */
  while (lseek(shared_file, 0, SEEK_CUR) != 2) usleep(1000);
  char ready[64];
  snprintf(ready, sizeof ready, "%d %d\n", getpid(), pid);
  put_file("ready", ready);
  while (!check_requested()) usleep(10000);

  char why[512] = "";
  if (expect_read(stream[0], "to-parent", why, sizeof why, "parent, stream") == 0 &&
      expect_read(seq[0], "seq-a", why, sizeof why, "parent, seqpacket 1") == 0 &&
      expect_read(seq[0], "seq-b", why, sizeof why, "parent, seqpacket 2") == 0) {
    if (lseek(shared_file, 0, SEEK_CUR) != 2) snprintf(why, sizeof why, "parent: shared file offset %ld, expected 2", (long)lseek(shared_file, 0, SEEK_CUR));
    else if (write(shared_file, "C", 1) != 1) snprintf(why, sizeof why, "parent: write: %s", strerror(errno));
  }
  if (!why[0] && write(stream[0], "G", 1) != 1) snprintf(why, sizeof why, "parent: write to the child: %s", strerror(errno));
  if (!why[0]) {
    char answer[512] = {0};
    ssize_t n = read(stream[0], answer, sizeof answer - 1);
    if (n <= 0) snprintf(why, sizeof why, "parent: no answer from the child (%s)", n < 0 ? strerror(errno) : "EOF");
    else if (strcmp(answer, "ok") != 0) snprintf(why, sizeof why, "%s", answer);
  }
  if (!why[0]) {
    char all[8] = {0};
    if (pread(shared_file, all, sizeof all - 1, 0) != 4 || strcmp(all, "ABCD") != 0) snprintf(why, sizeof why, "shared file holds '%s', expected ABCD", all);
    else if (lseek(shared_file, 0, SEEK_CUR) != 4) snprintf(why, sizeof why, "parent: shared offset %ld after the child's write, expected 4", (long)lseek(shared_file, 0, SEEK_CUR));
    else if (!(fcntl(shared_file, F_GETFL) & O_NONBLOCK)) snprintf(why, sizeof why, "parent does not see the O_NONBLOCK the child set: two open files, not one");
  }
  char result[600];
  snprintf(result, sizeof result, "%s\n", why[0] ? why : "PASS");
  put_file("result", result);
  for (;;) pause();
}
