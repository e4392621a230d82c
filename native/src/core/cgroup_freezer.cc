#include "cgroup_freezer.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <sstream>
#include <thread>

#include "errors.h"
#include "proc.h"

namespace cryopod {

namespace {

constexpr auto kFreezeTimeout = std::chrono::seconds(10);

void write_file(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", path);
  ssize_t n = write(fd, value.data(), value.size());
  int e = errno;
  close(fd);
  if (n != (ssize_t)value.size()) throw_errno("write " + value + " to " + path, n < 0 ? e : EIO);
}

// The thread IDs listed in `dir` and every cgroup below it (`file`: v1 "tasks", v2 "cgroup.threads").
void collect_threads(const std::string& dir, const char* file, int depth, std::set<int>& out) {
  if (depth > 32) throw CoreError("ECGROUP", "cgroup " + dir + " is nested deeper than 32 levels");
  std::istringstream in(read_text(dir + "/" + file));
  for (int tid; in >> tid;) out.insert(tid);
  DIR* d = opendir(dir.c_str());
  if (!d) throw_errno_at("opendir", dir);
  std::vector<std::string> subdirs;
  while (dirent* e = readdir(d))
    if (e->d_type == DT_DIR && e->d_name[0] != '.') subdirs.push_back(dir + "/" + e->d_name);
  closedir(d);
  for (const std::string& sub : subdirs) collect_threads(sub, file, depth + 1, out);
}

}  // namespace

std::set<int> CgroupFreezer::threads() const {
  std::set<int> out;
  collect_threads(dir_, kind_ == FreezerKind::V1 ? "tasks" : "cgroup.threads", 0, out);
  return out;
}

CgroupFreezer::CgroupFreezer(FreezerKind kind, const std::string& dir) : kind_(kind), dir_(dir) { freeze(); }

void CgroupFreezer::freeze() {
  if (frozen_) return;
  frozen_at_ = std::chrono::steady_clock::now();
  write_file(dir_ + (kind_ == FreezerKind::V1 ? "/freezer.state" : "/cgroup.freeze"), kind_ == FreezerKind::V1 ? "FROZEN" : "1");
  frozen_ = true;  // from here on the destructor thaws, whatever happens
  auto deadline = std::chrono::steady_clock::now() + kFreezeTimeout;
  while (!is_frozen()) {
    if (std::chrono::steady_clock::now() > deadline) {
      thaw();
      throw CoreError("EFREEZE", "cgroup " + dir_ + " did not freeze within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

CgroupFreezer::~CgroupFreezer() {
  try {
    thaw();
  } catch (...) {
    // nothing may escape a destructor; the write is retried once more
    try {
      write_file(dir_ + (kind_ == FreezerKind::V1 ? "/freezer.state" : "/cgroup.freeze"), kind_ == FreezerKind::V1 ? "THAWED" : "0");
    } catch (...) {
    }
  }
}

bool CgroupFreezer::is_frozen() const {
  if (kind_ == FreezerKind::V1) return read_text(dir_ + "/freezer.state").rfind("FROZEN", 0) == 0;
  std::string events = read_text(dir_ + "/cgroup.events");
  return events.find("frozen 1") != std::string::npos;
}

void CgroupFreezer::thaw() {
  if (!frozen_) return;
  write_file(dir_ + (kind_ == FreezerKind::V1 ? "/freezer.state" : "/cgroup.freeze"), kind_ == FreezerKind::V1 ? "THAWED" : "0");
  frozen_ = false;
}

}  // namespace cryopod
