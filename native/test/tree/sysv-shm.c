/*
 * sysv-shm: a parent and a child sharing a SysV shared memory segment (shmget with a key, shmat, fork),
 * each bumping a counter of its own in it and watching the other's. After restore both must still see
 * each other, and the segment must have its id and key back (shmctl(IPC_STAT) on the saved id).
 *   sysv-shm <workdir>   ready: "<parent pid> <child pid> <shmid>"
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/shm.h>

#include "tree-common.h"

struct counters {
  volatile unsigned long parent, child;
};

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  workdir = argv[1];
  close_inherited_fds();
  key_t key = (key_t)(0x43500000 | (getpid() & 0xffff));
  int id = shmget(key, 1 << 20, IPC_CREAT | IPC_EXCL | 0600);
  if (id < 0) return 1;
  struct counters* c = shmat(id, NULL, 0);
  if (c == (void*)-1) return 1;
  pid_t child = fork();
  if (child == 0) {
    for (;;) {
      c->child++;
      usleep(1000);
    }
  }
  char ready[128];
  snprintf(ready, sizeof ready, "%d %d %d\n", getpid(), child, id);
  put_file("ready", ready);
  while (!check_requested()) {
    c->parent++;
    usleep(1000);
  }
  char failure[256] = "";
  unsigned long seen = c->child;
  for (int i = 0; i < 200 && c->child == seen; i++) usleep(5000);
  if (c->child == seen) snprintf(failure, sizeof failure, "the child's counter stopped at %lu", seen);
  struct shmid_ds ds;
  if (!failure[0] && shmctl(id, IPC_STAT, &ds) != 0) snprintf(failure, sizeof failure, "shmid %d is gone", id);
  if (!failure[0] && ds.shm_perm.__key != key) snprintf(failure, sizeof failure, "shmid %d has key %x, not %x", id, ds.shm_perm.__key, key);
  char result[512];
  snprintf(result, sizeof result, failure[0] ? "FAIL: %s\n" : "PASS%s\n", failure);
  put_file("result", result);
  kill(child, SIGKILL);
  shmdt((void*)c);
  shmctl(id, IPC_RMID, NULL);
  return failure[0] ? 1 : 0;
}
