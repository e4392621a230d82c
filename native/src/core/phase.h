// The dump's phases, reported to an observer that may hold the dumper at each one (DumpOptions::phase_fd,
// `cryopod dump --phase-fd N`): the dumper writes "<name>\n" and waits for one byte before it goes on
// (EOF: it goes on at once). The crash-safety tests SIGKILL the dumper exactly there; an operator can
// step through a dump the same way. Names: seize, area (the parasite's memfd made), infect, snapshot,
// drain, cure, state (the in-task state read, every thread's remote syscalls done, before the area goes),
// unmap (the area gone), reap (the snapshot child reaped through the task); and, in checkpoint/, images.
// A tree dump: seize, then area, infect, drain, state, unmap per process. The restore has its own (RestoreRequest::phase_fd):
// seize, memory, release.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cryopod {

inline void phase(int fd, const char* name) {
  if (fd < 0) return;
  char line[32];
  size_t n = strnlen(name, sizeof line - 1);
  std::memcpy(line, name, n);
  line[n++] = '\n';
  if (write(fd, line, n) != (ssize_t)n) return;  // nobody listens: no one to wait for
  char ack;
  for (;;) {
    if (read(fd, &ack, 1) >= 0) return;
    if (errno == EAGAIN) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, -1);
    } else if (errno != EINTR) {
      return;
    }
  }
}

}  // namespace cryopod
