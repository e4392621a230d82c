// epoll: every registered target from fdinfo ("tfd: N events: X data: D ..."), with its events mask
// (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE bits included) and data. A target is re-registered by its fd
// number, so it must still be that fd: kcmp(KCMP_EPOLL_TFD) tells a target that was closed (or whose
// number now holds another file) but is still registered, and kcmp(KCMP_FILE) two registered fds that
// share one open file (a dup): both are refused, a restore could not give them back (checked again while
// the task is stopped: the preflight's view of a running task may be a moment old). The restore makes
// a new epoll once its targets are in place (needs()) and adds each one again.
#include <linux/kcmp.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <thread>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

struct Target {
  int tfd = -1;
  uint32_t events = 0;
  uint64_t data = 0;
};

bool is_epoll(const FdProbe& p) { return p.link == "anon_inode:[eventpoll]"; }

std::vector<Target> targets_of(const FdProbe& p) {
  std::vector<Target> out;
  for (const std::string& line : p.lines("tfd")) {
    Target t;
    if (sscanf(line.c_str(), "tfd: %d events: %" SCNx32 " data: %" SCNx64, &t.tfd, &t.events, &t.data) != 3)
      p.refuse("cannot read its fdinfo line \"" + line + "\"");
    out.push_back(t);
  }
  return out;
}

struct KcmpEpollSlot {
  uint32_t efd, tfd;
  uint64_t toff;
};

// Why a target cannot be restored, or "".
std::string target_problem(const FdProbe& p, const std::vector<Target>& all, size_t i) {
  const Target& t = all[i];
  KcmpEpollSlot slot{(uint32_t)p.fd, (uint32_t)t.tfd, 0};
  long same = syscall(SYS_kcmp, p.pid, p.pid, KCMP_EPOLL_TFD, t.tfd, &slot);
  if (same != 0)
    return "target fd " + std::to_string(t.tfd) + " was closed (or its number reused) but is still registered";
  for (size_t j = 0; j < i; ++j)
    if (all[j].tfd == t.tfd) return "target fd " + std::to_string(t.tfd) + " is registered twice (two files under one number)";
    else if (syscall(SYS_kcmp, p.pid, p.pid, KCMP_FILE, all[j].tfd, t.tfd) == 0)
      return "targets fd " + std::to_string(all[j].tfd) + " and fd " + std::to_string(t.tfd) +
             " are duplicates of one open file: a restore would make them two";
  return "";
}

std::string problem_of(const FdProbe& p, const std::vector<Target>& all) {
  for (size_t i = 0; i < all.size(); ++i) {
    std::string why = target_problem(p, all, i);
    if (!why.empty()) return why;
  }
  return "";
}

// The preflight runs beside the task: a target it closes between our read of fdinfo and kcmp (a server
// closing a connection, which libuv deregisters as it closes it) looks closed but still registered for
// that moment. So a problem counts only if a fresh read of fdinfo still shows it, a few times over;
// the dump checks again, authoritatively, while the task is stopped.
FileVerdict check_epoll(const FdProbe& first) {
  constexpr int kTries = 5;
  FdProbe p = first;
  for (int attempt = 1;; ++attempt) {
    std::vector<Target> all = targets_of(p);
    std::string why = problem_of(p, all);
    if (why.empty()) return {FileVerdict::Saved, std::to_string(all.size()) + " target" + (all.size() == 1 ? "" : "s")};
    if (attempt == kTries) return {FileVerdict::Refused, why};
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * attempt));
    try {
      p = probe_fd(first.pid, first.fd);
    } catch (const CoreError&) {
      return {FileVerdict::Saved, "closed meanwhile"};
    }
    if (!is_epoll(p)) return {FileVerdict::Saved, "closed meanwhile"};
  }
}

void dump_epoll(const FdProbe& p, OpenFile& f) {
  std::vector<Target> all = targets_of(p);
  std::string why = problem_of(p, all);  // the task is stopped: this is what a restore would get
  if (!why.empty()) p.refuse(why);
  for (const Target& t : all) {
    FileState item;
    item.num["tfd"] = (uint64_t)t.tfd;
    item.num["events"] = t.events;
    item.num["data"] = t.data;
    f.state.items.push_back(item);
  }
}

std::vector<int> epoll_needs(const OpenFile& f) {
  std::vector<int> out;
  for (const FileState& item : f.state.items) out.push_back((int)item.get("tfd"));
  return out;
}

long restore_epoll(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (epoll)";
  long ep = m.rs().call(SYS_epoll_create1, 0);
  if (ep < 0) throw_errno("in the restored task: epoll_create1 for " + what, (int)-ep);
  for (const FileState& item : f.state.items) {
    epoll_event ev{};
    ev.events = (uint32_t)item.need("events", what);
    ev.data.u64 = item.need("data", what);
    uint64_t tfd = item.need("tfd", what);
    long r = m.rs().call(SYS_epoll_ctl, (uint64_t)ep, EPOLL_CTL_ADD, tfd, m.put(0, &ev, sizeof ev));
    if (r < 0) throw_errno("in the restored task: " + what + ": epoll_ctl(ADD) of target fd " + std::to_string(tfd), (int)-r);
  }
  return ep;
}

}  // namespace

extern const FileKind kEpollKind = {"epoll", is_epoll, check_epoll, dump_epoll, epoll_needs, restore_epoll};

}  // namespace cryopod
