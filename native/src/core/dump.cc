#include "dump.h"
#include "dump_steps.h"
#include "image_hash.h"
#include "files/fifo.h"
#include "files/preflight.h"
#include "files/shared_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <cstring>
#include <memory>
#include <set>

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

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif

namespace cryopod {


namespace {

// A single-task dump saves no pipe contents and cannot check who else holds a pipe: pipes are dumped
// with the process tree (dump_tree), which does both.
void refuse_pipes(const TaskImage& t) {
  for (const OpenFile& f : t.files)
    if (f.kind == "pipe")
      throw CoreError("EUNSUPPORTED", task_name(t.pid) + ": fd " + std::to_string(f.fd) + " (" + f.path +
                                          "): pipes are dumped only with the whole process tree");
}

// Short freeze: everything but the pages is read while frozen, the parasite forks a copy-on-write
// snapshot, the task is cured and resumed, and the pages are drained from the snapshot.
// Every VMA of the task is in the snapshot child (fork leaves out MADV_DONTFORK memory).
bool snapshot_has(int child, const std::vector<Vma>& vmas) {
  std::vector<SmapsEntry> now = read_maps_file(child, "maps");
  for (const Vma& v : vmas) {
    if (v.is_special()) continue;
    bool found = false;
    for (const SmapsEntry& e : now)
      if (e.start == v.start && e.end == v.end) found = true;
    if (!found) return false;
  }
  return true;
}

bool dump_from_snapshot(const DumpRequest& req, TaskImage& t, SeizedTask& main, RemoteSyscalls& rs,
                        std::vector<std::unique_ptr<SeizedTask>>& others, uint64_t gadget, int out, uint64_t zero_pfn,
                        std::chrono::steady_clock::time_point freeze_started) {
  auto parasite = std::make_unique<Parasite>(main, rs, req.parasite_path, req.nr_pipes, req.phase_fd);
  parasite->record_threads(others);
  phase(req.phase_fd, "infect");
  int child = parasite->fork_snapshot();
  int child_in_task = parasite->snapshot_child_in_task();
  phase(req.phase_fd, "snapshot");
  if (!snapshot_has(child, t.vmas)) {
    // A VMA fork left out (MADV_DONTFORK set after the VmFlags were read): this snapshot is not the
    // task. Drop it while the task is still frozen and dump the task itself.
    parasite.reset();  // cures the task, kills the child
    rs.call(SYS_wait4, (uint64_t)child_in_task, 0, __WALL, 0);
    return false;
  }
  try {
    parasite->stop();  // the task is stopped again (the child serves the pages from now on)
    phase(req.phase_fd, "cure");
    read_identity(req.pid, t);
    t.files = collect_files(req.pid);
    settle_fifo_bytes({&t}, {req.pid});
    refuse_pipes(t);
    assign_share_ids({&t});
    collect_in_task_state(main, rs, others, parasite->thread_gadget(), t, parasite->scratch());
    phase(req.phase_fd, "state");
    parasite->cure();
    to_namespace_ids({&t});
    for (auto& th : others) th->detach();
    main.detach();
    bool frozen_by_cgroup = freeze_started.time_since_epoch().count() != 0;
    t.frozen_seconds = frozen_by_cgroup
                           ? std::chrono::duration<double>(std::chrono::steady_clock::now() - freeze_started).count()
                           : main.frozen_seconds();
    auto pages_started = std::chrono::steady_clock::now();
    // The page list is read from the snapshot, after the task runs again: fork copied the page tables,
    // so the child's pagemap is the frozen instant's (present, swapped, same PFNs), and scanning it
    // (8 bytes per page) costs no downtime.
    t.pages = collect_page_runs(child, t.vmas, zero_pfn);
    uint64_t need = 0;
    for (const PageRun& r : t.pages) need += r.nr_pages * kPageSize;
    phase(req.phase_fd, "drain");
    if (need > 0 && parasite->dump_pages(t.pages, out) != need) throw CoreError("EIO", "short pages image");
    if (need > 0) t.pages_method = "parasite";
    t.snapshot_private_bytes = parasite->snapshot_private_bytes();
    parasite->finish_snapshot();
    t.pages_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - pages_started).count();
  } catch (...) {
    // The Parasite's destructor cures the task (if still stopped) and kills the child; then the task,
    // running again, reaps the child.
    parasite.reset();
    for (auto& th : others) th->detach();
    main.detach();
    reap_through_task(req.pid, child_in_task, child, gadget, req.phase_fd);
    throw;
  }
  parasite.reset();
  reap_through_task(req.pid, child_in_task, child, gadget, req.phase_fd);
  fsync_if_file(out, req.pages_path);
  t.snapshot = true;
  return true;
}

}  // namespace

TaskImage dump_task(const DumpRequest& req) {
  check_dumpable(req.pid);
  {
    std::vector<FdReport> reports = check_files(req.pid);
    settle_unix_peers(reports, {req.pid});
    refuse_unsaveable(reports);  // before anything is stopped
  }
  TaskImage t;
  uint64_t zero_pfn = zero_page_pfn();

  // O_EXCL: never a file or symlink someone planted in the image directory (it would keep its owner and mode,
  // or send process memory elsewhere); the directory check refused such names before anything was stopped.
  // Read-write: the hash follower reads back what the page path wrote, while it is still in the caches.
  int out = open(req.pages_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0) throw_errno_at("create", req.pages_path);
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{out};
  ImageHashFollower hasher(out, req.pages_path);  // declared after closer: stopped before the fd closes

  // A short freeze reads smaps (VmFlags) before freezing: its page walk costs ~13 ms per GiB mapped,
  // downtime the frozen read of /proc/PID/maps does not have.
  bool short_freeze = req.snapshot && req.leave_running && !req.parasite_path.empty();
  std::vector<SmapsEntry> before;
  if (short_freeze) before = read_smaps(req.pid);

  // From here on, any exception detaches every thread and the task runs on (destructors, in reverse).
  auto freeze_started = std::chrono::steady_clock::now();
  std::unique_ptr<CgroupFreezer> freezer;
  std::unique_ptr<SeizedTask> main_ptr;
  std::vector<std::unique_ptr<SeizedTask>> others;
  if (!req.freezer_dir.empty()) {
    freezer = std::make_unique<CgroupFreezer>(req.freezer_kind, req.freezer_dir);
    main_ptr = seize_frozen(req.pid, *freezer, others);
  } else {
    main_ptr = std::make_unique<SeizedTask>(req.pid);
    others = seize_other_threads(req.pid);
  }
  SeizedTask& main = *main_ptr;
  phase(req.phase_fd, "seize");
  if (others.size() > kMaxThreads)
    throw CoreError("EUNSUPPORTED", task_name(req.pid) + " has more than " + std::to_string(kMaxThreads) + " threads");

  t.main = thread_registers(main);
  for (auto& th : others) t.threads.push_back(thread_registers(*th));

  t.vmas = short_freeze ? collect_vmas_fast(req.pid, before) : collect_vmas(req.pid);
  uint64_t gadget = find_vdso_syscall(req.pid, t.vmas);
  VdsoPark park(main);  // the calls the area cannot take run on a park in the vDSO's padding (vdso_park.h)
  RemoteSyscalls rs(main, park.gadget() ? park.gadget() : gadget);
  if (short_freeze && snapshot_possible(t.vmas) &&
      dump_from_snapshot(req, t, main, rs, others, gadget, out, zero_pfn,
                         freezer ? freeze_started : std::chrono::steady_clock::time_point{})) {
    t.pages_blake3 = hasher.finish();
    t.pages_chunk_blake3 = hasher.chunks_hex();
    return t;
  }
  t.pages = collect_page_runs(req.pid, t.vmas, zero_pfn);
  auto pages_started = std::chrono::steady_clock::now();
  // Kept infected (stopped, area mapped) until the in-task state is read: those remote syscalls then
  // run on the parasite's gadget, so a dumper that dies among them leaves the task parked (rescue.h).
  std::unique_ptr<Parasite> parasite;
  if (req.parasite_path.empty() || t.pages.empty()) {
    dump_pages(req.pid, t.vmas, t.pages, out);
    if (!t.pages.empty()) t.pages_method = "vm_readv";
  } else {
    parasite = std::make_unique<Parasite>(main, rs, req.parasite_path, req.nr_pipes, req.phase_fd);
    parasite->record_threads(others);
    phase(req.phase_fd, "infect");
    uint64_t need = 0;
    for (const PageRun& r : t.pages) need += r.nr_pages * kPageSize;
    phase(req.phase_fd, "drain");
    if (parasite->dump_pages(t.pages, out) != need) throw CoreError("EIO", "short pages image");
    parasite->stop();
    phase(req.phase_fd, "cure");
    t.pages_method = "parasite";
  }
  t.pages_blake3 = hasher.finish();
  t.pages_chunk_blake3 = hasher.chunks_hex();
  t.pages_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - pages_started).count();
  struct stat out_st {};
  if (fstat(out, &out_st) == 0 && S_ISREG(out_st.st_mode) && fsync(out) != 0) throw_errno_at("fsync", req.pages_path);

  read_identity(req.pid, t);
  t.files = collect_files(req.pid);
  settle_fifo_bytes({&t}, {req.pid});
  refuse_pipes(t);
  assign_share_ids({&t});
  collect_in_task_state(main, rs, others, parasite ? parasite->thread_gadget() : gadget, t, parasite ? parasite->scratch() : 0);
  phase(req.phase_fd, "state");
  if (parasite) parasite->cure();
  to_namespace_ids({&t});

  if (req.leave_running) {
    for (auto& th : others) th->detach();
    main.detach();
  } else if (req.stop_after) {
    // SIGSTOP is queued for the whole group while every thread is still stopped, so none of them runs
    // a single instruction after the snapshot.
    main.detach_stopped();
    for (auto& th : others) th->detach();
  } else {
    kill_all(main, others);
  }
  t.frozen_seconds = freezer ? std::chrono::duration<double>(std::chrono::steady_clock::now() - freeze_started).count()
                             : main.frozen_seconds();
  return t;
}

}  // namespace cryopod
