#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sstream>

#include "../dump_steps.h"
#include "../errors.h"
#include "../proc.h"
#include "file_kind.h"

namespace cryopod {

FdProbe probe_fd(int pid, int fd) {
  FdProbe p;
  p.pid = pid;
  p.fd = fd;
  std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  p.link = read_link(link);
  if (stat(link.c_str(), &p.st) != 0) throw_errno_at("stat", link);
  p.fdinfo = read_text("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd));
  p.flags = (int)std::strtoul(p.field("flags").c_str(), nullptr, 8);
  p.pos = std::strtoull(p.field("pos").c_str(), nullptr, 10);
  return p;
}

std::vector<std::string> FdProbe::lines(const std::string& key) const {
  std::vector<std::string> out;
  std::istringstream in(fdinfo);
  std::string line;
  std::string prefix = key + ":";
  while (std::getline(in, line))
    if (line.compare(0, prefix.size(), prefix) == 0) out.push_back(line);
  return out;
}

std::string FdProbe::field(const std::string& key) const {
  std::vector<std::string> all = lines(key);
  if (all.empty()) return "";
  std::string v = all.front().substr(key.size() + 1);
  size_t start = v.find_first_not_of(" \t");
  return start == std::string::npos ? "" : v.substr(start);
}

int FdProbe::dup() const {
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) throw_errno("pidfd_open " + task_name(pid));
  int got = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
  int e = errno;
  close(pidfd);
  if (got < 0) throw_errno("pidfd_getfd " + name(), e);
  return got;
}

std::string FdProbe::name() const { return task_name(pid) + ": fd " + std::to_string(fd) + " (" + link + ")"; }

void FdProbe::refuse(const std::string& why) const { throw CoreError("EUNSUPPORTED", name() + ": " + why); }

}  // namespace cryopod
