#include "restore_tree.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "errors.h"
#include "page_bitmap.h"
#include "phase.h"
#include "pid_placement.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "stub_process.h"
#include "vmas.h"
#include "files/inherit.h"

namespace cryopod {

namespace {

constexpr int kPipeFdBase = 900;  // where creators keep pipe ends until every holder has opened them

// One process of the tree during its restore.
struct TreeTask {
  int pid = 0;  // in our PID namespace
  std::unique_ptr<SeizedTask> task;
  MorphContext ctx;  // its remote syscalls and scratch page while it is being morphed
};

// Forks a child out of its parent once the parent's memory is restored: the child inherits it, so pages
// still shared copy-on-write at dump time and shared memory are shared again. Saved ID; the child
// starts stopped (PTRACE_O_TRACEFORK).
std::unique_ptr<SeizedTask> fork_child(TreeTask& parent, int id, PidPlacement& pids) {
  pid_t child = pids.clone_with_id(*parent.ctx.rs, parent.ctx.scratch, 0, id, "process " + std::to_string(id), "EPIDTAKEN");
  return std::make_unique<SeizedTask>(child, SeizedTask::Adopt{});
}

// Sessions and process groups as saved, where their leaders are in the tree (the root started a session
// of its own before its children were forked: a root whose session led outside the tree, a shell's,
// gets one too).
void restore_sessions(const TreeImage& tree, std::map<int, TreeTask*>& tasks) {
  std::set<int> members;
  for (const TaskImage& t : tree.tasks) members.insert(t.pid);
  for (size_t i = 1; i < tree.tasks.size(); ++i)
    if (tree.tasks[i].sid == tree.tasks[i].pid) tasks[tree.tasks[i].pid]->ctx.rs->call(SYS_setsid);
  for (int pass = 0; pass < 2; ++pass)  // group leaders first, then their members
    for (const TaskImage& t : tree.tasks) {
      bool leader = t.pgid == t.pid;
      if ((pass == 0) != leader || !members.count(t.pgid)) continue;
      long r = tasks[t.pid]->ctx.rs->call(SYS_setpgid, 0, leader ? 0 : t.pgid);
      if (r < 0 && r != -EPERM) throw_errno("setpgid of pid " + std::to_string(t.pid), (int)-r);
    }
}

// Each pipe is created once, in the first task that holds it, its ends kept at high fds until every
// holder has opened its own; the bytes it held are written back through /proc from here.
PipeSources create_pipes(const TreeImage& tree, std::map<int, TreeTask*>& tasks) {
  PipeSources sources;
  std::map<uint64_t, const PipeImage*> data;
  for (const PipeImage& p : tree.pipes) data[p.id] = &p;
  int next = kPipeFdBase;
  for (const TaskImage& t : tree.tasks)
    for (const OpenFile& f : t.files) {
      if (f.kind != "pipe" || is_external(f) || sources.count(f.pipe_id)) continue;
      TreeTask& s = *tasks[t.pid];
      RemoteSyscalls& rs = *s.ctx.rs;
      rs.must("pipe2", SYS_pipe2, s.ctx.scratch, 0);
      int fds[2];
      remote_read(s.pid, s.ctx.scratch, fds, sizeof fds);
      PipeSource src{s.pid, next, next + 1};
      next += 2;
      rs.must("dup2", SYS_dup2, fds[0], src.read_fd);
      rs.must("dup2", SYS_dup2, fds[1], src.write_fd);
      rs.call(SYS_close, fds[0]);
      rs.call(SYS_close, fds[1]);
      auto d = data.find(f.pipe_id);
      if (d != data.end() && !d->second->data.empty()) {
        std::string path = "/proc/" + std::to_string(s.pid) + "/fd/" + std::to_string(src.write_fd);
        int w = open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (w < 0) throw_errno_at("open", path);
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

// Until a stub takes its saved credentials (morph_rest), the files it maps are opened with the task's
// file-system identity and no supplementary groups: the stub keeps the capabilities clone3 set_tid needs
// (setfsuid drops only the file ones) and never maps a file the task could not have opened itself.
void check_files_as(RemoteSyscalls& rs, const Creds& c) {
  rs.call(SYS_setgroups, 0, 0);
  rs.call(SYS_setfsgid, c.fsgid);
  rs.call(SYS_setfsuid, c.fsuid);
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
  for (const TaskImage& t : tree.tasks)
    if (t.own_pid_ns != root.own_pid_ns) throw CoreError("EIMAGE", "tasks of the tree from different PID namespaces");
  bool need_id = tree.tasks.size() > 1 || !root.threads.empty();
  std::vector<const TaskImage*> all;
  for (const TaskImage& t : tree.tasks) all.push_back(&t);
  std::vector<int> pass_fds;
  RestoreScope files = plan_inherit(all, req.inherit, req.stub_pid > 0, pass_fds);
  std::unique_ptr<StubProcess> root_stub = req.stub_pid > 0 ? adopt_stub_for(root, need_id, req.stub_pid)
                                                            : start_stub_for(root, need_id, req.stub_path, -1, -1, pass_fds);
  // The stubs run as the restorer until their children and threads exist (clone3 set_tid needs
  // CAP_CHECKPOINT_RESTORE): each takes its saved credentials in morph_rest when the request asks for
  // them (root restores), and a child that ran as another user than its parent always does.
  bool restore_creds = req.uid >= 0 || req.gid >= 0;
  std::vector<std::unique_ptr<TreeTask>> procs(tree.tasks.size());
  std::map<int, TreeTask*> by_pid;  // saved ID → process
  std::vector<std::unique_ptr<StubProcess>> owned;  // killed on failure: init reaps them

  procs[0] = std::make_unique<TreeTask>();
  procs[0]->pid = root_stub->pid();
  // EXITKILL (as in restore.cc): a dead restorer takes the half-built tree with it.
  procs[0]->task = std::make_unique<SeizedTask>((pid_t)root_stub->pid(), PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL);
  PidPlacement pids(root_stub->pid(), spare_id(all));
  phase(req.phase_fd, "seize");
  {
    RemoteSyscalls rs(*procs[0]->task, find_vdso_syscall(root_stub->pid(), collect_vmas(root_stub->pid())));
    rs.call(SYS_setsid);  // before any child is forked, so that they are born into it
    if (restore_creds && req.stub_pid <= 0) check_files_as(rs, root.creds);
  }
  by_pid[root.pid] = procs[0].get();
  procs[0]->ctx.pids = &pids;
  if (restore_creds && req.stub_pid <= 0) procs[0]->ctx.creds = &root.creds;
  morph_memory(procs[0]->ctx, *procs[0]->task, root, req.pages_paths[0], req.verify, /*inherit=*/false);

  for (size_t i = 1; i < tree.tasks.size(); ++i) {
    const TaskImage& t = tree.tasks[i];
    TreeTask& parent = *by_pid.at(t.ppid);
    procs[i] = std::make_unique<TreeTask>();
    procs[i]->task = fork_child(parent, t.pid, pids);
    procs[i]->pid = procs[i]->task->pid();
    procs[i]->ctx.pids = &pids;
    const Creds& mine = t.creds;
    const Creds& parents = tree.tasks[position.at(t.ppid)].creds;
    if ((restore_creds && req.stub_pid <= 0) || std::memcmp(&mine, &parents, sizeof mine) != 0) procs[i]->ctx.creds = &t.creds;
    owned.push_back(std::make_unique<StubProcess>((pid_t)procs[i]->pid));
    if (procs[i]->ctx.creds && std::memcmp(&mine, &parents, sizeof mine) != 0) {
      RemoteSyscalls rs(*procs[i]->task, find_vdso_syscall(procs[i]->pid, collect_vmas(procs[i]->pid)));
      check_files_as(rs, mine);
    }
    by_pid[t.pid] = procs[i].get();
    morph_memory(procs[i]->ctx, *procs[i]->task, t, req.pages_paths[i], req.verify, /*inherit=*/true);
  }
  phase(req.phase_fd, "memory");
  restore_sessions(tree, by_pid);
  PipeSources pipes = create_pipes(tree, by_pid);
  files.pipes = &pipes;

  std::vector<MorphedTask> morphed;
  for (size_t i = 0; i < tree.tasks.size(); ++i) morphed.push_back(morph_rest(procs[i]->ctx, tree.tasks[i], files));
  // Every holder has its pipe ends now: the creators drop the ones they kept.
  for (const auto& [id, src] : pipes) {
    size_t i = 0;
    while (procs[i]->pid != src.creator_pid) ++i;
    RemoteSyscalls rs(*procs[i]->task, morphed[i].gadget);
    rs.call(SYS_close, src.read_fd);
    rs.call(SYS_close, src.write_fd);
  }
  pids.finish();
  phase(req.phase_fd, "release");
  // Children first: a parent never runs while a child it may wait for is still stopped.
  for (size_t i = tree.tasks.size(); i-- > 0;) release_morphed(*procs[i]->task, tree.tasks[i], morphed[i]);
  for (auto& o : owned) o->release();
  root_stub->release();
  return root_stub->pid();
}

}  // namespace cryopod
