// inotify: every watch from fdinfo ("inotify wd:N ino:I sdev:D mask:M ignored_mask:0 fhandle-bytes:B
// fhandle-type:T f_handle:H"), its watched object found by its file handle (open_by_handle_at on the
// mount of that device in the task's mount table) and kept by path. A restore makes a new instance and
// adds each watch again with the same wd: the kernel hands wds out in increasing order, so a smaller
// one is removed and added again until it is the saved one. Events queued but not read yet are
// refused (FIONREAD on a duplicate of the fd, at the check and again while the task is stopped): reading
// them would take them from the running process, and no call puts an event into a new instance, so a
// restore could only lose them, which a program waiting for that event would never notice.
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "../errors.h"
#include "../proc.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

constexpr int kMaxWdTries = 1 << 16;

struct Watch {
  int wd = 0;
  uint32_t mask = 0, ignored = 0;
  uint64_t sdev = 0;
  int handle_type = 0;
  std::vector<uint8_t> handle;
};

bool is_inotify(const FdProbe& p) { return p.link == "anon_inode:inotify"; }

std::vector<Watch> watches_of(const FdProbe& p) {
  std::vector<Watch> out;
  for (const std::string& line : p.lines("inotify wd")) {
    Watch w;
    unsigned bytes = 0;
    char hex[2 * MAX_HANDLE_SZ + 1] = {0};
    unsigned long long ino = 0;
    if (sscanf(line.c_str(), "inotify wd:%d ino:%llx sdev:%" SCNx64 " mask:%" SCNx32 " ignored_mask:%" SCNx32 " fhandle-bytes:%x fhandle-type:%x f_handle:%256s",
               &w.wd, &ino, &w.sdev, &w.mask, &w.ignored, &bytes, &w.handle_type, hex) != 8 || bytes > MAX_HANDLE_SZ)
      p.refuse("cannot read its fdinfo line \"" + line + "\"");
    for (unsigned i = 0; i < bytes; ++i) w.handle.push_back((uint8_t)std::strtoul(std::string(hex + 2 * i, 2).c_str(), nullptr, 16));
    out.push_back(w);
  }
  return out;
}

// The task's mount point of the filesystem whose kernel dev is `sdev`, through its /proc/PID/root.
std::string mount_of(int pid, uint64_t sdev) {
  unsigned maj = (unsigned)(sdev >> 20), min = (unsigned)(sdev & 0xfffff);
  std::ifstream in("/proc/" + std::to_string(pid) + "/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string id, parent, dev, root, point;
    f >> id >> parent >> dev >> root >> point;
    if (dev == std::to_string(maj) + ":" + std::to_string(min) && root == "/") return point;
  }
  return "";
}

// The watched object's path as the task sees it, or "" when it cannot be found.
std::string path_of(const FdProbe& p, const Watch& w) {
  std::string point = mount_of(p.pid, w.sdev);
  if (point.empty()) return "";
  std::string proc_root = "/proc/" + std::to_string(p.pid) + "/root";
  int mnt = open((proc_root + point).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mnt < 0) return "";
  std::unique_ptr<file_handle, void (*)(void*)> fh((file_handle*)malloc(sizeof(file_handle) + w.handle.size()), free);
  fh->handle_bytes = (unsigned)w.handle.size();
  fh->handle_type = w.handle_type;
  memcpy(fh->f_handle, w.handle.data(), w.handle.size());
  int obj = open_by_handle_at(mnt, fh.get(), O_PATH | O_CLOEXEC);
  close(mnt);
  if (obj < 0) return "";
  std::string path = read_link("/proc/self/fd/" + std::to_string(obj));
  close(obj);
  // Our view of it: take off the task's root, so that the path is the one it sees.
  std::string root = read_link(proc_root);
  if (root != "/" && path.compare(0, root.size(), root) == 0) path = path.substr(root.size());
  return path;
}

// Bytes of events queued on the instance and not read yet (FIONREAD on a duplicate: reads nothing).
int queued_bytes(const FdProbe& p) {
  int fd = p.dup(), n = 0;
  int r = ioctl(fd, FIONREAD, &n);
  int e = errno;
  close(fd);
  if (r != 0) throw_errno("FIONREAD on " + p.name(), e);
  return n;
}

std::string queued_refusal(int bytes) {
  return std::to_string(bytes) + " bytes of events are queued unread: they cannot be put into a new inotify instance (let the program read them, then dump)";
}

FileVerdict check_inotify(const FdProbe& p) {
  try {
    if (int q = queued_bytes(p)) return {FileVerdict::Refused, queued_refusal(q)};
  } catch (const CoreError& e) {
    return {FileVerdict::Refused, e.what()};
  }
  std::vector<Watch> all = watches_of(p);
  for (const Watch& w : all)
    if (path_of(p, w).empty()) return {FileVerdict::Refused, "the object of watch " + std::to_string(w.wd) + " cannot be found by its file handle (deleted?)"};
  return {FileVerdict::Saved, std::to_string(all.size()) + " watch" + (all.size() == 1 ? "" : "es") + ", no event queued"};
}

void dump_inotify(const FdProbe& p, OpenFile& f) {
  if (int q = queued_bytes(p)) p.refuse(queued_refusal(q));
  for (const Watch& w : watches_of(p)) {
    FileState item;
    item.num["wd"] = (uint64_t)w.wd;
    item.num["mask"] = w.mask;
    item.text["path"] = path_of(p, w);
    if (item.text["path"].empty()) p.refuse("the object of watch " + std::to_string(w.wd) + " cannot be found");
    f.state.items.push_back(item);
  }
}

long restore_inotify(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (inotify)";
  long fd = m.rs().call(SYS_inotify_init1, 0);
  if (fd < 0) throw_errno("in the restored task: inotify_init1 for " + what, (int)-fd);
  // Ascending by wd: the kernel only ever hands out larger ones (fdinfo lists them newest first).
  std::vector<const FileState*> order;
  for (const FileState& item : f.state.items) order.push_back(&item);
  std::sort(order.begin(), order.end(), [](const FileState* a, const FileState* b) { return a->get("wd") < b->get("wd"); });
  for (const FileState* w : order) {
    const FileState& item = *w;
    long want = (long)item.need("wd", what);
    auto path = item.text.find("path");
    if (path == item.text.end()) throw CoreError("EIMAGE", what + ": watch " + std::to_string(want) + " has no path");
    uint64_t addr = m.put_string(0, path->second);
    uint32_t mask = (uint32_t)item.need("mask", what);
    long wd = -1;
    for (int i = 0; i < kMaxWdTries; ++i) {
      wd = m.rs().call(SYS_inotify_add_watch, (uint64_t)fd, addr, mask);
      if (wd < 0) throw_errno("in the restored task: " + what + ": watch " + path->second, (int)-wd);
      if (wd >= want) break;
      m.rs().call(SYS_inotify_rm_watch, (uint64_t)fd, (uint64_t)wd);  // too small: the next one is larger
    }
    if (wd != want)
      throw CoreError("EINOTIFY", what + ": watch " + path->second + " got wd " + std::to_string(wd) + ", not the saved " + std::to_string(want));
  }
  // The removals above queued IN_IGNORED events the task never asked for: read them away.
  long nb = m.rs().call(SYS_fcntl, (uint64_t)fd, F_SETFL, O_NONBLOCK);
  while (nb >= 0 && m.rs().call(SYS_read, (uint64_t)fd, m.scratch() + 8192, 4096) > 0) {
  }
  return fd;
}

}  // namespace

extern const FileKind kInotifyKind = {"inotify", is_inotify, check_inotify, dump_inotify, nullptr, restore_inotify};

}  // namespace cryopod
