/*
 * cryopod-stub: the process a restore turns into the saved task.
 *
 * Static, freestanding, no libc: it must not own anything (threads, locks, TLS, fds) the restorer would
 * have to undo. It says "R" on fd 3 (the restorer's ready pipe), closes it and waits in pause() until the
 * restorer seizes it, unmaps all of it and maps the saved task in its place. A local restorer that died
 * before it got to the stub must not leave it behind: with a ready pipe it gives up after 30 s, at once
 * when nobody reads that pipe any more. In a
 * container (the restore pod's app containers run it as their command) there is no fd 3: it waits for the
 * node agent as long as the pod lives.
 */
#define SYS_write 1
#define SYS_close 3
#define SYS_pause 34
#define SYS_nanosleep 35
#define SYS_exit 60
#define EPIPE 32

static long sys3(long nr, long a1, long a2, long a3) {
  long ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a1), "S"(a2), "d"(a3) : "rcx", "r11", "memory");
  return ret;
}

void _start(void) {
  static const char ready = 'R';
  long wrote = sys3(SYS_write, 3, (long)&ready, 1);
  // No reader on the ready pipe: the restorer died before it got to us (SIGPIPE is ignored, as node
  // ignores it and exec keeps ignored signals). Nothing will ever seize this stub: leave now.
  if (wrote == -EPIPE) sys3(SYS_exit, 125, 0, 0);
  if (wrote == 1) {
    sys3(SYS_close, 3, 0, 0);
    static const long tenth[2] = {0, 100000000};
    for (int i = 0; i < 300; i++) sys3(SYS_nanosleep, (long)tenth, 0, 0);
    sys3(SYS_exit, 124, 0, 0);
  }
  for (;;) sys3(SYS_pause, 0, 0, 0);
}
