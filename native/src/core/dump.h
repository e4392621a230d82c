// Dump of one task and all its threads (docs/native.md, Dump):
//   checks (exists, not a zombie, not traced, not our own child)
//   → (freeze its cgroup) → seize + interrupt every thread → registers, XSAVE, signal mask, rseq, robust list
//   → VMAs → page runs → pages image → remote syscalls for what only the task can tell
//     (signal handlers, clear_child_tid, brk, sigaltstack) → open files, mm fields, identity
//   → kill (default) or detach (leave running).
// Whatever fails, the SeizedTask guard detaches and the task runs on as before.
#pragma once

#include <string>

#include "cgroup_freezer.h"
#include "task_model.h"

namespace cryopod {

// What a dump of one task and a dump of a tree share (the addon parses it once for both).
struct DumpOptions {
  bool leave_running = false;
  // Instead of killing the task, leave it stopped (SIGSTOP) for the caller to kill once the images are
  // written, or to resume with SIGCONT if writing them failed: a failed checkpoint loses nothing.
  bool stop_after = false;
  // The parasite blob (native/parasite/parasite.bin): pages go task → vmsplice → pipes → splice → image.
  // Empty: copy them with process_vm_readv instead (the fallback and the benchmark baseline).
  std::string parasite_path;
  unsigned nr_pipes = 8;
  // When set: the task's (or tree's) cgroup (a container's), frozen first so every thread stops at one
  // instant, seized while frozen, then thawed into the ptrace stops (CRIU's order). Always thawed on failure.
  std::string freezer_dir;
  FreezerKind freezer_kind = FreezerKind::V2;
  // A stepping hook (phase.h): at each phase the dumper writes its name and a newline here, then waits
  // for one byte (EOF: go on). -1: none.
  int phase_fd = -1;
};

struct DumpRequest : DumpOptions {
  int pid = 0;
  std::string pages_path;
  // Short freeze (with leave_running and the parasite): the parasite forks inside the frozen task, the
  // task is resumed, and the pages are drained from the child's copy-on-write snapshot.
  bool snapshot = false;
};

TaskImage dump_task(const DumpRequest& req);

}  // namespace cryopod
