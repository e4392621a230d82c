// The dump's guard (checkpoint/guard.ts): `cryopod-guard PID SINCE_TICKS STOPPED_BEFORE`, stdin a pipe
// whose write end only the dumper holds; STOPPED_BEFORE lists (comma-separated, "-" for none) the
// processes of the tree that were in a group stop before the dump. EOF without the word "done": the
// dumper died before it finished, so the task and every living process below it are put back (rescue.h:
// a tree dump infects each process in turn) and that is said on stderr.
//
// A small executable rather than a second node process: the guard starts with every dump, while the
// pages move, and node's startup (~50 ms of CPU here) competed with the dump for the machine's cores;
// this one costs ~1 ms. It links only the native core's rescue path.
#include <dirent.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

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

// "1,2,3" or "-".
bool parse_list(const char* s, std::set<int>& out) {
  if (std::string(s) == "-") return true;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    unsigned long long v = 0;
    if (!parse(item.c_str(), v) || v == 0 || v > 0x7fffffff) return false;
    out.insert((int)v);
  }
  return true;
}

char state_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close == std::string::npos || close + 2 >= text.size() ? 'X' : text[close + 2];
}

// The root's living descendants, breadth first, read after the root was put back (zombies skipped).
std::vector<int> living_descendants(int root) {
  std::vector<int> out;
  std::set<int> seen{root};
  std::deque<int> queue{root};
  while (!queue.empty()) {
    int p = queue.front();
    queue.pop_front();
    std::string dir = "/proc/" + std::to_string(p) + "/task";
    std::vector<std::string> tids;
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') tids.push_back(e->d_name);
      closedir(d);
    }
    for (const std::string& tid : tids) {
      std::ifstream kids(dir + "/" + tid + "/children");
      int k;
      while (kids >> k)
        if (seen.insert(k).second && state_of(k) != 'Z') {
          out.push_back(k);
          queue.push_back(k);
        }
    }
  }
  return out;
}

bool put_back(int root, int pid, unsigned long long since, const std::set<int>& stopped_before) {
  try {
    cryopod::RescueRequest req;
    req.pid = pid;
    req.children_since = since;
    req.resume_stopped = !stopped_before.count(pid);
    cryopod::RescueReport r = cryopod::rescue_task(req);
    if (!r.gone && (r.infected || r.children_reaped > 0 || r.resumed))
      std::fprintf(stderr,
                   "cryopod: the dumper of pid %d died before it finished; pid %d was put back (parasite removed: %s, "
                   "registers restored: %s, fds closed: %d, snapshot children reaped: %d, resumed from its stop: %s)\n",
                   root, pid, r.infected ? "true" : "false", r.registers_restored ? "true" : "false", r.fds_closed,
                   r.children_reaped, r.resumed ? "true" : "false");
    return true;
  } catch (const std::exception& e) {
    // The others are still put back.
    std::fprintf(stderr, "cryopod: the dumper of pid %d died; putting pid %d back failed: %s\n", root, pid, e.what());
    return false;
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned long long pid = 0, since = 0;
  std::set<int> stopped_before;
  if (argc != 4 || !parse(argv[1], pid) || pid == 0 || pid > 0x7fffffff || !parse(argv[2], since) || !parse_list(argv[3], stopped_before)) {
    std::fprintf(stderr, "usage: cryopod-guard PID SINCE_TICKS STOPPED_BEFORE(pid,pid,... or -)\n");
    return 2;
  }
  if (read_all_stdin().find("done") != std::string::npos) return 0;
  bool ok = put_back((int)pid, (int)pid, since, stopped_before);
  for (int d : living_descendants((int)pid)) ok = put_back((int)pid, d, since, stopped_before) && ok;
  return ok ? 0 : 1;
}
