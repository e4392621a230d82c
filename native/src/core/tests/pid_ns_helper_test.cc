// The PID-namespace helper (pid_ns_helper.h) as a tenant would meet it. A "tenant": a process that is
// init of a new PID namespace; the helper is forked into it and must hold CAP_CHECKPOINT_RESTORE alone
// (every set, bounding included), no_new_privs, a mount namespace of one empty tmpfs, three fds; a
// process of the tenant with another uid can neither signal it nor read its /proc entries; it still
// does its job (the next task forked in the namespace gets the ID asked for); once finished it is gone,
// and the tenant's init never had it as a child. Run as root; prints PASS and exits 0.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "../clone3.h"
#include "../errors.h"
#include "../pid_ns_helper.h"

using namespace cryopod;

static int failures = 0;
#define CHECK(cond, ...)                          \
  do {                                            \
    if (!(cond)) {                                \
      std::fprintf(stderr, "FAIL %s: ", #cond);   \
      std::fprintf(stderr, __VA_ARGS__);          \
      std::fprintf(stderr, "\n");                 \
      ++failures;                                 \
    }                                             \
  } while (0)

static std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static std::string field(const std::string& status, const std::string& key) {
  auto at = status.find("\n" + key + ":");
  if (at == std::string::npos) return "";
  auto start = status.find_first_not_of(" \t", at + key.size() + 2);
  return status.substr(start, status.find('\n', start) - start);
}

// Runs `fn` in a child of ours that has joined `tenant`'s PID namespace (so the child's own children
// are in it); returns fn's exit status as the grandchild's.
template <typename Fn>
static int in_tenant(pid_t tenant, Fn fn) {
  pid_t c = fork();
  if (c == 0) {
    int ns = open(("/proc/" + std::to_string(tenant) + "/ns/pid").c_str(), O_RDONLY);
    if (ns < 0 || setns(ns, CLONE_NEWPID) != 0) _exit(100);
    pid_t g = fork();
    if (g == 0) _exit(fn());
    int st = 0;
    waitpid(g, &st, 0);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 101);
  }
  int st = 0;
  waitpid(c, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 102;
}

int main() {
  // The tenant: init of its own PID namespace, waiting.
  pid_t tenant = clone3_fork(CLONE_NEWPID, 0);
  if (tenant == 0) {
    for (;;) pause();
  }
  CHECK(tenant > 0, "clone3(CLONE_NEWPID): %s", std::strerror(errno));
  {
    PidNamespaceHelper helper(tenant, 300);
    pid_t h = helper.pid();
    std::string status = slurp("/proc/" + std::to_string(h) + "/status");
    const std::string only40 = "0000010000000000";
    CHECK(field(status, "CapEff") == only40, "CapEff %s", field(status, "CapEff").c_str());
    CHECK(field(status, "CapPrm") == only40, "CapPrm %s", field(status, "CapPrm").c_str());
    CHECK(field(status, "CapBnd") == only40, "CapBnd %s", field(status, "CapBnd").c_str());
    CHECK(field(status, "CapInh") == "0000000000000000", "CapInh %s", field(status, "CapInh").c_str());
    CHECK(field(status, "CapAmb") == "0000000000000000", "CapAmb %s", field(status, "CapAmb").c_str());
    CHECK(field(status, "NoNewPrivs") == "1", "NoNewPrivs %s", field(status, "NoNewPrivs").c_str());
    std::string nspid = field(status, "NSpid");
    CHECK(nspid.find('\t') != std::string::npos, "NSpid %s: not in a namespace below ours", nspid.c_str());
    int in_ns = std::atoi(nspid.substr(nspid.rfind('\t') + 1).c_str());
    CHECK(in_ns >= 300 && in_ns < 364, "its ID in the tenant's namespace is %d", in_ns);
    CHECK(field(status, "PPid") != std::to_string(tenant), "the tenant's init is its parent");

    std::string mounts = slurp("/proc/" + std::to_string(h) + "/mountinfo");
    int lines = 0;
    for (char ch : mounts) lines += ch == '\n';
    CHECK(lines == 1 && mounts.find(" / / ") != std::string::npos && mounts.find("tmpfs") != std::string::npos,
          "its mounts:\n%s", mounts.c_str());
    DIR* d = opendir(("/proc/" + std::to_string(h) + "/root").c_str());
    int entries = 0;
    while (d && readdir(d)) ++entries;
    if (d) closedir(d);
    CHECK(d && entries == 2, "its root holds %d entries (., .. expected)", entries);
    d = opendir(("/proc/" + std::to_string(h) + "/fd").c_str());
    std::string fds;
    while (dirent* e = d ? readdir(d) : nullptr)
      if (e->d_name[0] != '.') fds += std::string(e->d_name) + " ";
    if (d) closedir(d);
    CHECK(fds == "0 1 2 ", "its fds: %s", fds.c_str());

    // A tenant process of another uid: no signal, no /proc.
    int r = in_tenant(tenant, [&]() {
      if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
      if (kill(in_ns, 0) == 0 || errno != EPERM) return 11;
      if (open(("/proc/" + std::to_string(h) + "/environ").c_str(), O_RDONLY) >= 0) return 12;
      return 0;
    });
    CHECK(r == 0, "a tenant process of uid 65534: check %d failed (11: could signal it, 12: could read its environ)", r);

    // Its job: the next task forked in the namespace gets 200.
    helper.set_next(200);
    r = in_tenant(tenant, []() { return getpid() == 200 ? 0 : 20; });
    CHECK(r == 0, "the task forked after set_next(200) did not get ID 200");

    helper.finish();
    CHECK(kill(h, 0) != 0 && errno == ESRCH, "the helper %d still exists after finish()", h);
  }
  kill(tenant, SIGKILL);
  waitpid(tenant, nullptr, 0);
  if (failures) return 1;
  std::printf("PASS\n");
  return 0;
}
