#include "restore_tree.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "errors.h"
#include "page_bitmap.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "stub_process.h"
#include "vmas.h"

namespace cryopod {

namespace {

constexpr int kPipeFdBase = 900;  // where creators keep pipe ends until every holder has opened them

struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

// A stub of the tree, not morphed yet, with a page of scratch memory for syscall arguments.
struct TreeStub {
  int pid = 0;
  std::unique_ptr<SeizedTask> task;
  std::unique_ptr<RemoteSyscalls> rs;
  uint64_t scratch = 0;
};

void open_scratch(TreeStub& s) {
  s.rs = std::make_unique<RemoteSyscalls>(*s.task, find_vdso_syscall(s.pid, collect_vmas(s.pid)));
  s.scratch = (uint64_t)s.rs->must("mmap scratch", SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0);
}

// Forks a child stub out of its parent's stub with the saved PID; it starts stopped (PTRACE_O_TRACEFORK).
TreeStub fork_stub(TreeStub& parent, int pid) {
  pid_t want = pid;
  remote_write(parent.pid, parent.scratch, &want, sizeof want);
  CloneArgs ca{};
  ca.exit_signal = SIGCHLD;
  ca.set_tid = parent.scratch;
  ca.set_tid_size = 1;
  remote_write(parent.pid, parent.scratch + 64, &ca, sizeof ca);
  long child = parent.rs->call(SYS_clone3, parent.scratch + 64, sizeof ca);
  if (child == -EEXIST)
    throw CoreError("EPIDTAKEN", "PID " + std::to_string(pid) + " is in use: a process tree is restored only with its own PIDs");
  if (child < 0) throw_errno("clone3 of the stub for pid " + std::to_string(pid), (int)-child);
  TreeStub s;
  s.pid = (int)child;
  s.task = std::make_unique<SeizedTask>((pid_t)child, SeizedTask::Adopt{});
  s.scratch = parent.scratch;  // inherited with the parent's memory
  s.rs = std::make_unique<RemoteSyscalls>(*s.task, parent.rs->gadget());
  return s;
}

// Sessions and process groups as saved, where their leaders are in the tree (the root already started a
// session of its own before its children were forked: a root whose session led outside the tree, a
// shell's, gets one too).
void restore_sessions(const TreeImage& tree, std::map<int, TreeStub>& stubs) {
  std::map<int, int> index;
  for (size_t i = 0; i < tree.tasks.size(); ++i) index[tree.tasks[i].pid] = (int)i;
  for (size_t i = 0; i < tree.tasks.size(); ++i) {
    const TaskImage& t = tree.tasks[i];
    if (i > 0 && t.sid == t.pid) stubs[t.pid].rs->call(SYS_setsid);
  }
  for (size_t pass = 0; pass < 2; ++pass)  // group leaders first, then their members
    for (const TaskImage& t : tree.tasks) {
      bool leader = t.pgid == t.pid;
      if ((pass == 0) != leader || !index.count(t.pgid)) continue;
      long r = stubs[t.pid].rs->call(SYS_setpgid, 0, leader ? 0 : t.pgid);
      if (r < 0 && r != -EPERM) throw_errno("setpgid of pid " + std::to_string(t.pid), (int)-r);
    }
}

// Each pipe is created once, in the first task that holds it, its ends kept at high fds until every
// holder has opened its own; the bytes it held are written back through /proc from here.
PipeSources create_pipes(const TreeImage& tree, std::map<int, TreeStub>& stubs) {
  PipeSources sources;
  std::map<uint64_t, const PipeImage*> data;
  for (const PipeImage& p : tree.pipes) data[p.id] = &p;
  int next = kPipeFdBase;
  for (const TaskImage& t : tree.tasks)
    for (const OpenFile& f : t.files) {
      if (f.kind != "pipe" || sources.count(f.pipe_id)) continue;
      TreeStub& s = stubs[t.pid];
      s.rs->must("pipe2", SYS_pipe2, s.scratch, 0);
      int fds[2];
      remote_read(s.pid, s.scratch, fds, sizeof fds);
      PipeSource src{t.pid, next, next + 1};
      next += 2;
      s.rs->must("dup2", SYS_dup2, fds[0], src.read_fd);
      s.rs->must("dup2", SYS_dup2, fds[1], src.write_fd);
      s.rs->call(SYS_close, fds[0]);
      s.rs->call(SYS_close, fds[1]);
      auto d = data.find(f.pipe_id);
      if (d != data.end() && !d->second->data.empty()) {
        std::string path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(src.write_fd);
        int w = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w < 0) throw_errno("open " + path);
        fcntl(w, F_SETPIPE_SZ, (int)d->second->data.size());
        ssize_t n = write(w, d->second->data.data(), d->second->data.size());
        int e = errno;
        close(w);
        if (n != (ssize_t)d->second->data.size()) throw_errno("refill pipe " + std::to_string(f.pipe_id), n < 0 ? e : EIO);
      }
      sources[f.pipe_id] = src;
    }
  return sources;
}

}  // namespace

int restore_tree(const TreeImage& tree, const TreeRestoreRequest& req) {
  if (tree.tasks.empty()) throw CoreError("EIMAGE", "an empty process tree");
  if (req.pages_paths.size() != tree.tasks.size()) throw CoreError("EINVAL", "one pages image per task is needed");
  for (const TaskImage& t : tree.tasks) validate_image(t);
  std::map<int, size_t> position;
  for (size_t i = 0; i < tree.tasks.size(); ++i) {
    const TaskImage& t = tree.tasks[i];
    if (position.count(t.pid)) throw CoreError("EIMAGE", "pid " + std::to_string(t.pid) + " twice in the tree");
    if (i > 0 && !position.count(t.ppid))
      throw CoreError("EIMAGE", "pid " + std::to_string(t.pid) + " comes before its parent " + std::to_string(t.ppid));
    position[t.pid] = i;
  }

  const TaskImage& root = tree.tasks[0];
  bool need_pid = tree.tasks.size() > 1 || !root.threads.empty();
  StubProcess root_stub(req.stub_path, req.uid, req.gid, root.pid, need_pid);
  std::map<int, TreeStub> stubs;  // saved pid → stub (every stub is the saved pid, except a lone root)
  std::vector<std::unique_ptr<StubProcess>> owned;  // killed on failure: init reaps them
  {
    TreeStub r;
    r.pid = root_stub.pid();
    r.task = std::make_unique<SeizedTask>((pid_t)r.pid, PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK);
    open_scratch(r);
    r.rs->call(SYS_setsid);  // before any child is forked, so that they are born into it
    stubs[root.pid] = std::move(r);
  }
  for (size_t i = 1; i < tree.tasks.size(); ++i) {
    const TaskImage& t = tree.tasks[i];
    stubs[t.pid] = fork_stub(stubs[t.ppid], t.pid);
    owned.push_back(std::make_unique<StubProcess>((pid_t)t.pid));
  }
  restore_sessions(tree, stubs);
  PipeSources pipes = create_pipes(tree, stubs);

  std::vector<MorphedTask> morphed;
  for (size_t i = 0; i < tree.tasks.size(); ++i) {
    TreeStub& s = stubs[tree.tasks[i].pid];
    s.rs.reset();  // the morph brings its own remote syscalls (and unmaps the scratch page)
    morphed.push_back(morph_stub(*s.task, tree.tasks[i], req.pages_paths[i], pipes));
  }
  // Every holder has its pipe ends now: the creators drop the ones they kept.
  for (const auto& [id, src] : pipes) {
    size_t i = position[src.creator_pid];
    TreeStub& s = stubs[tree.tasks[i].pid];
    RemoteSyscalls rs(*s.task, morphed[i].gadget);
    rs.call(SYS_close, src.read_fd);
    rs.call(SYS_close, src.write_fd);
  }
  // Children first: a parent never runs while a child it may wait for is still a stopped stub.
  for (size_t i = tree.tasks.size(); i-- > 0;) release_morphed(*stubs[tree.tasks[i].pid].task, tree.tasks[i], morphed[i]);
  for (auto& o : owned) o->release();
  root_stub.release();
  return root_stub.pid();
}

}  // namespace cryopod
