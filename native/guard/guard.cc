// The dump's guard (checkpoint/guard.ts): `cryopod-guard PID SINCE_TICKS RESUME(0|1)`, stdin a pipe whose
// write end only the dumper holds. EOF without the word "done": the dumper died before it finished, so
// the task is put back (rescue.h) and that is said on stderr.
//
// A small executable rather than a second node process: the guard starts with every dump, while the
// pages move, and node's startup (~50 ms of CPU here) competed with the dump for the machine's cores;
// this one costs ~1 ms. It links only the native core's rescue path.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "../src/core/rescue.h"

namespace {

bool parse(const char* s, unsigned long long& out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoull(s, &end, 10);
  return errno == 0 && *end == '\0';
}

// Everything the dumper writes, until EOF (or an error reading: the dumper is gone either way).
std::string read_all_stdin() {
  std::string input;
  char buf[256];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n > 0) {
      input.append(buf, (size_t)n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return input;
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long pid = 0, since = 0, resume = 0;
  if (argc != 4 || !parse(argv[1], pid) || pid == 0 || pid > 0x7fffffff || !parse(argv[2], since) || !parse(argv[3], resume) ||
      resume > 1) {
    std::fprintf(stderr, "usage: cryopod-guard PID SINCE_TICKS RESUME(0|1)\n");
    return 2;
  }
  if (read_all_stdin().find("done") != std::string::npos) return 0;
  try {
    cryopod::RescueRequest req;
    req.pid = (int)pid;
    req.children_since = since;
    req.resume_stopped = resume == 1;
    cryopod::RescueReport r = cryopod::rescue_task(req);
    if (!r.gone && (r.infected || r.children_reaped > 0 || r.resumed))
      std::fprintf(stderr,
                   "cryopod: the dumper of pid %llu died before it finished; pid %llu was put back (parasite removed: %s, "
                   "registers restored: %s, fds closed: %d, snapshot children reaped: %d, resumed from its stop: %s)\n",
                   pid, pid, r.infected ? "true" : "false", r.registers_restored ? "true" : "false", r.fds_closed,
                   r.children_reaped, r.resumed ? "true" : "false");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cryopod: the dumper of pid %llu died; putting pid %llu back failed: %s\n", pid, pid, e.what());
    return 1;
  }
}
