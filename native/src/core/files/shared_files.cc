#include "shared_files.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "../errors.h"
#include "../proc.h"
#include "../dump_steps.h"
#include "../restore_morph.h"

namespace cryopod {

namespace {

constexpr uint64_t kMsgScratch = 8192;  // where the remote recvmsg's msghdr, iovec and cmsg sit in the scratch area

}  // namespace

std::vector<size_t> first_holders(const std::vector<FdRef>& fds) {
  // kcmp(KCMP_FILE) orders open files (0: the same, 1: the first is lower, 2: higher), so each object's
  // descriptions are kept sorted by it and each fd is placed by binary search: n log n calls, not n².
  auto order = [&](size_t a, size_t b) {
    long r = syscall(SYS_kcmp, fds[a].pid, fds[b].pid, KCMP_FILE, fds[a].fd, fds[b].fd);
    if (r < 0 || r > 2)
      throw_errno("kcmp of fd " + std::to_string(fds[a].fd) + " of " + task_name(fds[a].pid) + " and fd " + std::to_string(fds[b].fd) +
                      " of " + task_name(fds[b].pid),
                  r < 0 ? errno : EINVAL);
    return r;
  };
  std::map<std::pair<uint64_t, uint64_t>, std::vector<size_t>> firsts;  // object → its descriptions' first fds, in kcmp order
  std::vector<size_t> out(fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    struct stat st {};
    std::string link = "/proc/" + std::to_string(fds[i].pid) + "/fd/" + std::to_string(fds[i].fd);
    if (stat(link.c_str(), &st) != 0) throw_errno_at("stat", link);
    auto& sorted = firsts[{(uint64_t)st.st_dev, (uint64_t)st.st_ino}];
    size_t lo = 0, hi = sorted.size();
    while (lo < hi) {  // the first description not below fd i's
      size_t mid = (lo + hi) / 2;
      if (order(sorted[mid], i) == 1) lo = mid + 1;
      else hi = mid;
    }
    if (lo < sorted.size() && order(sorted[lo], i) == 0) {
      out[i] = sorted[lo];
    } else {
      out[i] = i;
      sorted.insert(sorted.begin() + (long)lo, i);
    }
  }
  return out;
}

void assign_share_ids(const std::vector<TaskImage*>& tasks) {
  std::vector<FdRef> fds;
  std::vector<OpenFile*> files;
  for (TaskImage* t : tasks)
    for (OpenFile& f : t->files) {
      fds.push_back({t->pid, f.fd});
      files.push_back(&f);
    }
  std::vector<size_t> first = first_holders(fds);
  std::vector<size_t> holders(fds.size(), 0);
  for (size_t i = 0; i < fds.size(); ++i) ++holders[first[i]];
  std::map<size_t, uint64_t> id_of;  // first holder → share id, numbered in tree and fd order
  for (size_t i = 0; i < fds.size(); ++i) {
    if (holders[first[i]] < 2) continue;
    auto it = id_of.find(first[i]);
    if (it == id_of.end()) it = id_of.emplace(first[i], id_of.size() + 1).first;
    files[i]->share_id = it->second;
  }
}

FdHandover::~FdHandover() {
  for (auto& [key, fd] : kept_) close(fd);
  for (auto& [pid, c] : channels_) close(c.ours);
}

int FdHandover::take(int pid, int fd, const std::string& what) {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) throw_errno("pidfd_open of the restored " + task_name(pid) + " for " + what);
  int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);  // O_CLOEXEC on our side
  int e = errno;
  close(pidfd);
  if (got < 0) throw_errno("pidfd_getfd of " + what + " from the restored " + task_name(pid), e);
  return got;
}

void FdHandover::keep(const std::string& key, int our_fd) {
  auto it = kept_.find(key);
  if (it != kept_.end()) close(it->second);
  kept_[key] = our_fd;
}

int FdHandover::kept(const std::string& key) const {
  auto it = kept_.find(key);
  return it == kept_.end() ? -1 : it->second;
}

void FdHandover::drop(const std::string& key) {
  auto it = kept_.find(key);
  if (it == kept_.end()) return;
  close(it->second);
  kept_.erase(it);
}

FdHandover::Channel& FdHandover::channel_to(Morph& m) {
  int pid = m.task().pid();
  auto it = channels_.find(pid);
  if (it != channels_.end()) return it->second;
  auto& rs = m.rs();
  uint64_t pair = m.scratch() + kMsgScratch;
  rs.must("socketpair for handing shared files over", SYS_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, pair);
  int fds[2];
  remote_read(pid, pair, fds, sizeof fds);
  Channel c;
  try {
    c.ours = take(pid, fds[0], "the hand-over socket");
  } catch (...) {
    rs.call(SYS_close, (uint64_t)fds[0]);
    rs.call(SYS_close, (uint64_t)fds[1]);
    throw;
  }
  rs.call(SYS_close, (uint64_t)fds[0]);
  c.theirs = rs.call(SYS_fcntl, (uint64_t)fds[1], F_DUPFD_CLOEXEC, (uint64_t)floor_);
  rs.call(SYS_close, (uint64_t)fds[1]);
  if (c.theirs < 0) {
    close(c.ours);
    throw_errno("in the restored task: move the hand-over socket above fd " + std::to_string(floor_), (int)-c.theirs);
  }
  return channels_[pid] = c;
}

long FdHandover::give(Morph& m, int our_fd, const std::string& what) {
  Channel& c = channel_to(m);
  char byte = 'F';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&h);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &our_fd, sizeof(int));
  if (sendmsg(c.ours, &h, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) throw_errno("hand " + what + " over (sendmsg SCM_RIGHTS)");

  // The same message received in the stub: msghdr, iovec, one byte and the control buffer in its scratch.
  uint64_t base = m.scratch() + kMsgScratch;
  uint64_t r_iov = base + 128, r_byte = base + 160, r_control = base + 192;
  struct {
    uint64_t base, len;
  } riov{r_byte, 1};
  m.put(kMsgScratch + 128, &riov, sizeof riov);
  msghdr rh{};
  rh.msg_iov = (iovec*)r_iov;
  rh.msg_iovlen = 1;
  rh.msg_control = (void*)r_control;
  rh.msg_controllen = sizeof control;
  m.put(kMsgScratch, &rh, sizeof rh);
  char zero[sizeof control] = {};
  m.put(kMsgScratch + 192, zero, sizeof zero);
  long n = m.rs().call(SYS_recvmsg, (uint64_t)c.theirs, base, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n != 1) throw_errno("in the restored task: receive " + what + " (recvmsg SCM_RIGHTS)", n < 0 ? (int)-n : EIO);
  char got[sizeof control];
  remote_read(m.task().pid(), r_control, got, sizeof got);
  auto* rcm = (cmsghdr*)got;
  if (rcm->cmsg_level != SOL_SOCKET || rcm->cmsg_type != SCM_RIGHTS || rcm->cmsg_len != CMSG_LEN(sizeof(int)))
    throw CoreError("EIO", "in the restored task: " + what + " did not arrive with its message");
  int fd;
  std::memcpy(&fd, CMSG_DATA(rcm), sizeof fd);
  return fd;
}

void FdHandover::done_with(Morph& m) {
  auto it = channels_.find(m.task().pid());
  if (it == channels_.end()) return;
  m.rs().call(SYS_close, (uint64_t)it->second.theirs);
  close(it->second.ours);
  channels_.erase(it);
}

}  // namespace cryopod
