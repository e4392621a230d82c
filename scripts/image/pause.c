/*
 * The pod sandbox's process (what containerd's sandbox_image runs): holds the pod's namespaces open and
 * does nothing else. As PID 1 of a pod with shareProcessNamespace it must reap orphans, and it must exit
 * on SIGINT/SIGTERM (PID 1 has no default signal actions, so unhandled signals would be ignored).
 * Built static (scripts/image/build.sh), so the image holds this one file.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(128 + sig); }

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = stop;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  for (;;) pause();
}
