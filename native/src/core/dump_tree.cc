#include "dump_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "dump_steps.h"
#include "image_hash.h"
#include "errors.h"
#include "page_bitmap.h"
#include "page_copy.h"
#include "parasite.h"
#include "phase.h"
#include "vdso_park.h"
#include "pid_namespace.h"
#include "proc.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "vmas.h"
#include "files/fifo.h"
#include "files/inherit.h"
#include "files/pipe.h"
#include "files/preflight.h"
#include "files/shared_files.h"

namespace cryopod {

namespace {

constexpr size_t kMaxProcesses = 1024;

struct FrozenProcess {
  int pid = 0;
  std::unique_ptr<SeizedTask> main;
  std::vector<std::unique_ptr<SeizedTask>> others;
};

std::vector<int> children_of(int pid) {
  std::vector<int> out;
  for (int tid : list_tasks(pid)) {
    std::string text;
    try {
      text = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/children");
    } catch (const CoreError&) {
      continue;  // the thread exited
    }
    std::istringstream in(text);
    int child;
    while (in >> child) out.push_back(child);
  }
  return out;
}

// A child of the tree was exiting while the tree was being stopped: a zombie its (now stopped) parent
// had not reaped yet, or a task that could no longer be seized. Nothing of it would be restorable, and
// its parent reaps it within moments once it runs again: the freeze is undone and tried again.
struct ChildExiting {
  int parent, child;
};

bool exiting_or_gone(int pid) {
  try {
    char state = read_status(pid).state;
    return state == 'Z' || state == 'X';
  } catch (const CoreError&) {
    return true;  // no /proc entry any more
  }
}

// Seizes one child of a stopped parent; a child that exits meanwhile is the caller's ChildExiting.
std::unique_ptr<SeizedTask> seize_child(int parent, int child) {
  try {
    return std::make_unique<SeizedTask>(child);
  } catch (const CoreError&) {
    if (exiting_or_gone(child)) throw ChildExiting{parent, child};  // EPERM/ESRCH from an exiting task
    throw;
  }
}

// Stops every process of the tree, root first, each fully (all threads) before its children are looked
// up: a stopped process forks no more, so when a pass finds no new child the tree is complete.
std::vector<FrozenProcess> freeze_tree_once(int root) {
  std::vector<FrozenProcess> tree;
  std::set<int> known{root};
  std::deque<std::pair<int, int>> todo{{0, root}};  // (parent, pid)
  while (!todo.empty()) {
    auto [parent, pid] = todo.front();
    todo.pop_front();
    FrozenProcess p;
    p.pid = pid;
    p.main = parent ? seize_child(parent, pid) : std::make_unique<SeizedTask>(pid);
    p.others = seize_other_threads(pid);
    tree.push_back(std::move(p));
    if (tree.size() > kMaxProcesses) throw CoreError("EUNSUPPORTED", "process tree larger than 1024 processes");
    for (int child : children_of(pid)) {
      if (known.count(child)) continue;
      if (exiting_or_gone(child)) throw ChildExiting{pid, child};
      known.insert(child);
      todo.push_back({pid, child});
    }
  }
  return tree;
}

// A server with short-lived children (PostgreSQL's backends, a CGI, a shell's commands) has one
// exiting at any moment under load: each time the freeze meets one it lets the tree run again, waits
// for the parent to reap that child, and retries. A zombie its parent never reaps is refused by name.
template <typename Freeze>
std::vector<FrozenProcess> freeze_waiting_out_exits(Freeze freeze) {
  constexpr int kTries = 20;
  constexpr auto kReapWait = std::chrono::milliseconds(500);
  for (int attempt = 1;; ++attempt) {
    ChildExiting exiting{};
    try {
      return freeze();
    } catch (const ChildExiting& e) {
      exiting = e;  // the partial tree's destructors have let every seized task run on
    }
    auto deadline = std::chrono::steady_clock::now() + kReapWait;
    auto still_zombie = [&] {
      try {
        return read_status(exiting.child).state == 'Z' && read_stat(exiting.child).ppid == exiting.parent;
      } catch (const CoreError&) {
        return false;
      }
    };
    while (still_zombie() && std::chrono::steady_clock::now() < deadline) usleep(2000);
    if (still_zombie())
      throw CoreError("EUNSUPPORTED", task_name(exiting.child) + ", a child of " + task_name(exiting.parent) +
                                          ", is a zombie its parent has not reaped: a restore cannot re-create it");
    if (attempt == kTries)
      throw CoreError("EAGAIN", "the process tree kept changing while it was being stopped: " + std::to_string(kTries) +
                                    " tries each met a child exiting (the last " + task_name(exiting.child) + ")");
  }
}

std::vector<FrozenProcess> freeze_tree(int root) {
  return freeze_waiting_out_exits([&] { return freeze_tree_once(root); });
}

// The same, for a tree in a frozen cgroup: nothing can fork, so one walk finds every process; every
// thread is seized and interrupted while frozen, the cgroup thawed, and the stops collected.
std::vector<FrozenProcess> freeze_tree_in_cgroup_once(int root, CgroupFreezer& freezer) {
  std::vector<int> pids{root};
  for (size_t i = 0; i < pids.size(); ++i)
    for (int child : children_of(pids[i])) {
      if (exiting_or_gone(child)) {
        freezer.thaw();
        throw ChildExiting{pids[i], child};
      }
      pids.push_back(child);
    }
  if (pids.size() > kMaxProcesses) throw CoreError("EUNSUPPORTED", "process tree larger than 1024 processes");
  auto seized = seize_while_frozen(pids, freezer);
  std::vector<FrozenProcess> tree;
  for (size_t i = 0; i < pids.size(); ++i) {
    FrozenProcess p;
    p.pid = pids[i];
    p.main = std::move(seized[i].front());
    for (size_t j = 1; j < seized[i].size(); ++j) p.others.push_back(std::move(seized[i][j]));
    tree.push_back(std::move(p));
  }
  return tree;
}

std::vector<FrozenProcess> freeze_tree_in_cgroup(int root, CgroupFreezer& freezer) {
  return freeze_waiting_out_exits([&] {
    freezer.freeze();
    return freeze_tree_in_cgroup_once(root, freezer);
  });
}

// One process of the frozen tree, as dump_task does it (full freeze).
// Shared memory is dumped once per object, by the first task (tree order) that maps it; any other holder
// must have inherited it from its parent (same range, same object), which is how the restore shares it.
void dedupe_shmem(TaskImage& t, const TaskImage* parent, std::set<uint64_t>& dumped) {
  std::set<uint64_t> here;
  for (const Vma& v : t.vmas) {
    if (v.kind != VmaKind::Shmem) continue;
    here.insert(v.shmid);
    if (!dumped.count(v.shmid)) continue;
    bool inherited = false;
    if (parent)
      for (const Vma& pv : parent->vmas)
        if (pv.kind == VmaKind::Shmem && pv.shmid == v.shmid && pv.start == v.start && pv.end == v.end && pv.pgoff == v.pgoff)
          inherited = true;
    if (!inherited)
      throw CoreError("EUNSUPPORTED", task_name(t.pid) + ": shared memory " + v.path + " at " + std::to_string(v.start) +
                                          " is mapped in another task but was not inherited from its parent: not supported yet");
    std::vector<PageRun> keep;
    for (const PageRun& r : t.pages)
      if (r.vaddr < v.start || r.vaddr >= v.end) keep.push_back(r);
    t.pages.swap(keep);
  }
  dumped.insert(here.begin(), here.end());
}

// A deleted file mapped MAP_SHARED by two tasks: each restore would make its own copy, and they would no
// longer share what they write. Refused (one task mapping it, or private mappings, are fine).
void refuse_shared_ghosts(const TaskImage& t, const std::vector<TaskImage>& earlier) {
  for (const Vma& v : t.vmas) {
    if (v.ghost_id == 0 || v.kind != VmaKind::FileShared) continue;
    for (const TaskImage& o : earlier)
      for (const Vma& ov : o.vmas)
        if (ov.ghost_id != 0 && ov.dev == v.dev && ov.inode == v.inode)
          throw CoreError("EUNSUPPORTED", task_name(t.pid) + ": mapping " + v.name + ": a deleted file mapped shared is also mapped by " +
                                              task_name(o.pid) + ": its copies would not be shared after a restore");
  }
}

TaskImage dump_one(FrozenProcess& p, const TreeDumpRequest& req, size_t index, uint64_t zero_pfn, const TaskImage* parent,
                   std::set<uint64_t>& dumped_shmem) {
  TaskImage t;
  t.pid = p.pid;
  t.main = thread_registers(*p.main);
  for (auto& th : p.others) t.threads.push_back(thread_registers(*th));
  t.vmas = collect_vmas(p.pid);
  t.pages = collect_page_runs(p.pid, t.vmas, zero_pfn);
  if (parent) split_inherited(p.pid, parent->pid, t.vmas, parent->vmas, t.pages, t.inherited);
  dedupe_shmem(t, parent, dumped_shmem);
  std::string pages_path = pages_file_of(req.pages_dir, index);
  int out = open(pages_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);  // as in dump_task
  if (out < 0) throw_errno_at("create", pages_path);
  try {
    ImageHashFollower hasher(out, pages_path);
    uint64_t gadget = find_vdso_syscall(p.pid, t.vmas);
    VdsoPark park(*p.main);  // as in dump_task
    RemoteSyscalls rs(*p.main, park.gadget() ? park.gadget() : gadget);
    std::unique_ptr<Parasite> parasite;  // infected until the in-task state is read, as in dump_task
    if (req.parasite_path.empty() || t.pages.empty()) {
      dump_pages(p.pid, t.vmas, t.pages, out);
      if (!t.pages.empty()) t.pages_method = "vm_readv";
    } else {
      parasite = std::make_unique<Parasite>(*p.main, rs, req.parasite_path, req.nr_pipes, req.phase_fd);
      parasite->record_threads(p.others);
      phase(req.phase_fd, "infect");
      uint64_t need = 0;
      for (const PageRun& r : t.pages) need += r.nr_pages * kPageSize;
      phase(req.phase_fd, "drain");
      if (parasite->dump_pages(t.pages, out) != need) throw CoreError("EIO", "short pages image of " + task_name(p.pid));
      parasite->stop();
      t.pages_method = "parasite";
    }
    t.pages_blake3 = hasher.finish();
    t.pages_chunk_blake3 = hasher.chunks_hex();
    fsync_if_file(out, pages_path);
    read_identity(p.pid, t);
    t.files = collect_files(p.pid);
    collect_in_task_state(*p.main, rs, p.others, parasite ? parasite->thread_gadget() : gadget, t, parasite ? parasite->scratch() : 0);
    phase(req.phase_fd, "state");
    if (parasite) parasite->cure();
  } catch (...) {
    close(out);
    throw;
  }
  close(out);
  return t;
}

}  // namespace

std::string pages_file_of(const std::string& dir, size_t index) { return dir + "/pages-" + std::to_string(index + 1) + ".img"; }

TreeImage dump_tree(const TreeDumpRequest& req) {
  check_dumpable(req.root_pid);
  refuse_unsaveable(preflight_tree(req.root_pid));  // before anything is stopped
  uint64_t zero_pfn = zero_page_pfn();
  auto started = std::chrono::steady_clock::now();
  // From here on any exception detaches every thread of every process (destructors): all run on.
  std::unique_ptr<CgroupFreezer> freezer;
  std::vector<FrozenProcess> tree;
  if (!req.freezer_dir.empty()) {
    freezer = std::make_unique<CgroupFreezer>(req.freezer_kind, req.freezer_dir);
    tree = freeze_tree_in_cgroup(req.root_pid, *freezer);
  } else {
    tree = freeze_tree(req.root_pid);
  }
  phase(req.phase_fd, "seize");

  TreeImage img;
  std::set<uint64_t> dumped_shmem;
  std::map<int, size_t> index_of;
  for (size_t i = 0; i < tree.size(); ++i) {
    int ppid = read_stat(tree[i].pid).ppid;
    const TaskImage* parent = i > 0 && index_of.count(ppid) ? &img.tasks[index_of[ppid]] : nullptr;
    img.tasks.push_back(dump_one(tree[i], req, i, zero_pfn, parent, dumped_shmem));
    refuse_shared_ghosts(img.tasks.back(), {img.tasks.begin(), img.tasks.end() - 1});
    index_of[tree[i].pid] = i;
  }

  // Pipes: those with every holder in the tree are saved once with their bytes; one held outside it too
  // (a container's stdio to the runtime's shim) is external: saved by identity, re-attached on restore
  // to an fd the restorer provides, its bytes left to whoever else holds it.
  std::set<int> members;
  for (const FrozenProcess& p : tree) members.insert(p.pid);
  std::map<uint64_t, std::pair<int, int>> any_end;  // pipe → (pid, fd) of one end
  std::set<uint64_t> ids;
  for (const TaskImage& t : img.tasks)
    for (const OpenFile& f : t.files)
      if (f.kind == "pipe") {
        ids.insert(f.pipe_id);
        if (!any_end.count(f.pipe_id)) any_end[f.pipe_id] = {t.pid, f.fd};
      }
  if (!ids.empty()) {
    std::set<uint64_t> external;
    for (const auto& [id, holders] : pipe_holders(ids))
      for (int holder : holders)
        if (!members.count(holder)) external.insert(id);
    for (TaskImage& t : img.tasks)
      for (OpenFile& f : t.files)
        if (f.kind == "pipe" && external.count(f.pipe_id)) mark_external(f);
    for (uint64_t id : ids)
      if (!external.count(id)) img.pipes.push_back(PipeImage{id, peek_pipe(any_end[id].first, any_end[id].second)});
  }

  std::vector<TaskImage*> all;
  for (TaskImage& t : img.tasks) all.push_back(&t);
  settle_fifo_bytes(all, members);
  assign_share_ids(all);  // host PIDs still, the tree still frozen
  to_namespace_ids(all);

  // Let go of everything together.
  if (req.leave_running) {
    for (auto& p : tree) {
      for (auto& th : p.others) th->detach();
      p.main->detach();
    }
  } else if (req.stop_after) {
    for (auto& p : tree) {
      p.main->detach_stopped();
      for (auto& th : p.others) th->detach();
    }
  } else {
    // Children first, so that no parent sees a child's death while it still runs.
    for (auto it = tree.rbegin(); it != tree.rend(); ++it) kill_all(*it->main, it->others);
  }
  img.frozen_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (TaskImage& t : img.tasks) t.frozen_seconds = img.frozen_seconds;
  return img;
}

}  // namespace cryopod
