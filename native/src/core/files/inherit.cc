#include "inherit.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include <map>
#include <set>

#include "../errors.h"
#include "../restore_morph.h"
#include "../stub_process.h"

namespace cryopod {

namespace {

constexpr int kKeptStubFdBase = 950;  // where a stub's own fds wait until the saved fds are in place

const InheritFd* find_source(const RestoreScope& scope, int fd) {
  for (const InheritFd& i : scope.inherit)
    if (i.fd == fd) return &i;
  return nullptr;
}

}  // namespace

void mark_external(OpenFile& f) { f.state.num["external"] = 1; }
bool is_external(const OpenFile& f) { return f.state.get("external") == 1; }

RestoreScope plan_inherit(const std::vector<const TaskImage*>& tasks, const std::vector<InheritFd>& requested,
                          bool stub_adopted, std::vector<int>& pass_fds) {
  RestoreScope scope;
  scope.stub_adopted = stub_adopted;
  std::set<int> seen;
  for (const InheritFd& r : requested) {
    if (r.fd < 0) throw CoreError("EINHERIT", "--inherit-fd: fd " + std::to_string(r.fd) + " is not an fd number");
    if (!seen.insert(r.fd).second) throw CoreError("EINHERIT", "--inherit-fd: fd " + std::to_string(r.fd) + " is given twice");
  }
  auto add = [&](InheritFd i) {
    if (i.from == InheritFd::RestorerFd) {
      if (stub_adopted)
        throw CoreError("EINHERIT", "fd " + std::to_string(i.fd) + ": an fd of the restorer cannot be passed to a stub "
                                    "someone else started; name a path, or the stub's own fd");
      pass_fds.push_back(i.source_fd);
      i.from = InheritFd::StubFd;
      i.source_fd = kPassedFdBase + (int)pass_fds.size() - 1;
    }
    scope.inherit.push_back(i);
  };
  std::map<int, std::string> external;  // fd → what it was
  for (const TaskImage* t : tasks)
    for (const OpenFile& f : t->files)
      if (is_external(f)) external[f.fd] = f.path;
  for (const InheritFd& r : requested) {
    if (!external.count(r.fd))
      throw CoreError("EINHERIT", "--inherit-fd " + std::to_string(r.fd) + ": no task of the checkpoint holds an "
                                  "external object at fd " + std::to_string(r.fd));
    add(r);
  }
  for (const auto& [fd, what] : external) {
    if (seen.count(fd)) continue;
    if (fd > 2)
      throw CoreError("EINHERIT", "fd " + std::to_string(fd) + " (" + what + ") was external, held outside the checkpointed "
                                  "tree: say what takes its place (--inherit-fd " + std::to_string(fd) + ":<fd or path>)");
    InheritFd d;
    d.fd = fd;
    d.from = stub_adopted ? InheritFd::StubFd : InheritFd::RestorerFd;
    d.source_fd = fd;
    add(d);
  }
  return scope;
}

void keep_stub_fds(Morph& m, RestoreScope& scope) {
  for (const InheritFd& i : scope.inherit) {
    if (i.from != InheritFd::StubFd || scope.stub_fds.count(i.source_fd)) continue;
    long kept = m.rs().call(SYS_fcntl, (uint64_t)i.source_fd, F_DUPFD_CLOEXEC, kKeptStubFdBase);
    if (kept < 0)
      throw_errno("in the restore stub: fd " + std::to_string(i.source_fd) + " to re-attach saved fd " +
                      std::to_string(i.fd) + " to",
                  (int)-kept);
    scope.stub_fds[i.source_fd] = (int)kept;
  }
}

long open_inherited(Morph& m, const OpenFile& f, RestoreScope& scope) {
  const InheritFd* src = find_source(scope, f.fd);
  if (!src) throw CoreError("EINHERIT", "fd " + std::to_string(f.fd) + " (" + f.path + ") is external and has no source");
  if (src->from == InheritFd::Path) {
    int flags = (f.flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOCTTY;
    long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, src->path), flags, 0);
    if (fd < 0) throw_errno("in the restored task: open " + src->path + " for fd " + std::to_string(f.fd), (int)-fd);
    return fd;
  }
  auto kept = scope.stub_fds.find(src->source_fd);
  if (kept == scope.stub_fds.end()) throw CoreError("EINTERNAL", "the stub's fd " + std::to_string(src->source_fd) + " was not kept");
  // A new fd on the same open file (a dup): the restorer's or the container's pipe, shared with it.
  long fd = m.rs().call(SYS_fcntl, (uint64_t)kept->second, F_DUPFD, 0);
  if (fd < 0) throw_errno("in the restored task: dup of the inherited fd for fd " + std::to_string(f.fd), (int)-fd);
  return fd;
}

}  // namespace cryopod
