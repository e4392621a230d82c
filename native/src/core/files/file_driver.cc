#include "file_driver.h"

#include <fcntl.h>
#include <sys/syscall.h>

#include <functional>
#include <map>
#include <set>

#include "../dump_steps.h"
#include "../errors.h"
#include "../proc.h"
#include "../restore.h"
#include "../restore_morph.h"
#include "inherit.h"
#include "shared_files.h"

namespace cryopod {

namespace {

const FileKind* detect_kind(const FdProbe& p) {
  for (const FileKind* k : file_kinds())
    if (k->detect(p)) return k;
  return nullptr;
}

// A lock is saved only by the kinds that take it again (regular files and directories).
FileVerdict verdict_of(const FileKind& k, const FdProbe& p) {
  if (!p.lines("lock").empty() && std::string(k.name) != "reg" && std::string(k.name) != "dir")
    return {FileVerdict::Refused, "a file lock on a " + std::string(k.name) + " is not saved"};
  return k.check ? k.check(p) : FileVerdict{FileVerdict::Saved, ""};
}

}  // namespace

std::string unsupported_reason(const FdProbe& p) {
  const std::string& l = p.link;
  auto anon = [&](const char* what) { return l == std::string("anon_inode:") + what || l == std::string("anon_inode:[") + what + "]"; };
  if (anon("io_uring")) return "an io_uring instance: its rings and requests in flight cannot be saved";
  if (anon("fanotify")) return "a fanotify group: not supported";
  if (anon("userfaultfd")) return "a userfaultfd: not supported";
  if (anon("perf_event")) return "a perf event: not supported";
  if (anon("bpf-map") || anon("bpf-prog") || anon("bpf_link")) return "a BPF object: not supported";
  if (anon("pidfd")) return "a pidfd: not supported";
  if (l.rfind("anon_inode:", 0) == 0) return "this kind of anonymous inode is not supported";
  if (l.rfind("socket:[", 0) == 0) return "this kind of socket is not supported";
  if (S_ISCHR(p.st.st_mode)) return "devices other than terminals, /dev/null, /dev/zero, /dev/full, /dev/random and "
                                    "/dev/urandom are not supported";
  if (S_ISFIFO(p.st.st_mode)) return "a deleted FIFO cannot be opened again";
  if (l.size() > 10 && l.compare(l.size() - 10, 10, " (deleted)") == 0) return "a deleted file that is not a regular one";
  return "this kind of file is not supported";
}

std::vector<OpenFile> collect_files(int pid) {
  std::vector<OpenFile> out;
  for (int fd : list_fds(pid)) {
    FdProbe p = probe_fd(pid, fd);
    const FileKind* k = detect_kind(p);
    if (!k) p.refuse(unsupported_reason(p));
    FileVerdict v = verdict_of(*k, p);
    if (v.status == FileVerdict::Refused) p.refuse(v.note);
    OpenFile f;
    f.fd = fd;
    f.kind = k->name;
    f.path = p.link;
    f.flags = p.flags & ~O_CLOEXEC;
    f.cloexec = (p.flags & O_CLOEXEC) != 0;
    f.mode = p.link.rfind("anon_inode:", 0) == 0 ? 0 : p.st.st_mode;  // an anonymous inode's mode means nothing
    k->dump(p, f);
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<FdReport> check_files(int pid) {
  std::vector<FdReport> out;
  for (int fd : list_fds(pid)) {
    FdReport r;
    r.pid = pid;
    r.fd = fd;
    FdProbe p;
    try {
      p = probe_fd(pid, fd);
    } catch (const CoreError& e) {
      continue;  // closed meanwhile: nothing to save
    }
    r.object = p.link;
    const FileKind* k = detect_kind(p);
    if (!k) {
      r.verdict = FileVerdict{FileVerdict::Refused, unsupported_reason(p)};
    } else {
      r.kind = k->name;
      r.verdict = verdict_of(*k, p);
    }
    out.push_back(std::move(r));
  }
  return out;
}

void place_fd(Morph& m, long fd, const OpenFile& f) {
  if (fd != f.fd) {
    m.rs().must("dup2", SYS_dup2, (uint64_t)fd, f.fd);
    m.rs().call(SYS_close, (uint64_t)fd);
  }
  m.rs().must("fcntl(F_SETFL)", SYS_fcntl, f.fd, F_SETFL, f.flags & (O_APPEND | O_NONBLOCK | O_ASYNC));
  m.rs().must("fcntl(F_SETFD)", SYS_fcntl, f.fd, F_SETFD, f.cloexec ? FD_CLOEXEC : 0);
}

void restore_files(Morph& m, const TaskImage& img, RestoreScope& scope) {
  scope.stub_fds.clear();  // the stub's own fds are this task's
  keep_stub_fds(m, scope);
  std::set<int> keep;
  if (scope.pipes)
    for (const auto& [id, src] : *scope.pipes)
      if (src.creator_pid == m.task().pid()) keep.insert({src.read_fd, src.write_fd});
  for (const auto& [own, kept] : scope.stub_fds) keep.insert(kept);
  for (int fd : list_fds(m.task().pid()))
    if (!keep.count(fd)) m.rs().call(SYS_close, fd);

  if (!scope.handover) scope.handover = std::make_shared<FdHandover>();
  FdHandover& handover = *scope.handover;
  std::map<int, const OpenFile*> by_fd;
  for (const OpenFile& f : img.files) {
    by_fd[f.fd] = &f;
    handover.reserve_up_to(f.fd);
  }
  std::set<int> done, visiting;
  // Depth first over needs(): every fd a kind needs is in place before it (an epoll's targets).
  std::function<void(const OpenFile&)> restore_one = [&](const OpenFile& f) {
    if (done.count(f.fd)) return;
    if (visiting.count(f.fd)) throw CoreError("EIMAGE", "fd " + std::to_string(f.fd) + " needs itself (a cycle of epolls)");
    visiting.insert(f.fd);
    const FileKind* k = kind_named(f.kind);
    if (!k) throw CoreError("EIMAGE", "fd " + std::to_string(f.fd) + " is of unknown kind " + f.kind);
    // An external fd's source is chosen by its number (fd N: the restorer's fd N, or what --inherit-fd
    // names): holders of one open file at the same number share what its first holder re-attached (nginx's
    // workers their master's stdout, opened once); at another number it takes its own source, even when the
    // saved fds shared one open file (a terminal on 0, 1 and 2: the restorer's 0 may be read-only).
    bool shared = f.share_id != 0;
    std::string share_key = "share:" + std::to_string(f.share_id) + (is_external(f) ? ":fd" + std::to_string(f.fd) : "");
    if (shared && handover.kept(share_key) >= 0) {
      // An open file another fd (of this task or an earlier one) already re-created: that very one.
      place_fd(m, handover.give(m, handover.kept(share_key), "fd " + std::to_string(f.fd) + " (" + f.kind + ")"), f);
      visiting.erase(f.fd);
      done.insert(f.fd);
      return;
    }
    if (k->needs)
      for (int need : k->needs(f)) {
        auto it = by_fd.find(need);
        if (it == by_fd.end())
          throw CoreError("EIMAGE", "fd " + std::to_string(f.fd) + " (" + f.kind + ") needs fd " + std::to_string(need) + ", which the image does not have");
        restore_one(*it->second);
      }
    place_fd(m, k->restore(m, f, scope), f);
    if (shared) handover.keep(share_key, FdHandover::take(m.task().pid(), f.fd, "fd " + std::to_string(f.fd) + " (" + f.kind + ")"));
    visiting.erase(f.fd);
    done.insert(f.fd);
  };
  for (const OpenFile& f : img.files) restore_one(f);
  handover.done_with(m);
  for (const auto& [own, kept] : scope.stub_fds) m.rs().call(SYS_close, (uint64_t)kept);
}

}  // namespace cryopod
