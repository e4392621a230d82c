// Restore: morph a waiting stub into the saved task.
//
//   spawn stub → seize → (remote syscalls from the stub's vDSO gadget)
//   unmap everything of the stub but the vDSO/vvar → move the vDSO/vvar to their saved addresses
//   → scratch page → map every saved VMA (files reopened by path from inside the task, so they resolve
//   in its mount namespace) → fill pages → final protections and madvise → fds → cwd, umask, comm
//   → PR_SET_MM_MAP (mm fields, auxv, exe) → signal handlers, altstack, robust list, clear_child_tid, rseq
//   → unmap scratch → XSAVE, registers, signal mask → detach: the task runs on.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "remote_syscall.h"
#include "seized_task.h"

#include "task_model.h"
#include "files/file_kind.h"

namespace cryopod {

class PagesVerification;
struct LazyRequest;

struct RestoreRequest {
  std::string pages_path;
  std::string stub_path;
  long uid = -1;  // credentials for the stub; -1 keeps the caller's
  long gid = -1;
  // Morph this already running stub (a restore pod's container, started by the container runtime)
  // instead of spawning one: it keeps its PID, namespaces, cgroups and credentials.
  int stub_pid = 0;
  // The manifest's digest of the pages image, checked by the fill as it writes the pages (page_fill.h);
  // null: not verified here (the caller hashed the image itself). Owned by the caller.
  PagesVerification* verify = nullptr;
  // What takes the places of external fds (--inherit-fd); saved stdio defaults to ours or the stub's.
  std::vector<InheritFd> inherit;
  // Set: a lazy restore (lazy_pager.h); the pager serving the task comes back in it. Owned by the caller.
  LazyRequest* lazy = nullptr;
  // The stepping hook (phase.h), restore phases: seize (the stub seized, nothing changed yet), memory
  // (its address space is the task's, filled), release (everything but the let-go is done).
  int phase_fd = -1;
};

// Returns the PID of the restored task.
int restore_task(const TaskImage& image, const RestoreRequest& req);

// For the tree restore: where each pipe is handed from (the creator's fds holding both ends).
struct PipeSource {
  int creator_pid = 0;  // in our PID namespace
  int read_fd = -1, write_fd = -1;
};
using PipeSources = std::map<uint64_t, PipeSource>;

// A stub turned into the task, not yet let go: the re-created threads wait stopped.
struct MorphedTask {
  uint64_t gadget = 0;
  std::vector<std::unique_ptr<SeizedTask>> threads;
};
class PidPlacement;

// A stub's morph in two halves: restore_task runs them in a row; a tree runs every task's memory first
// (a child is forked from its parent once the parent's memory is restored, and keeps the VMAs it
// inherits), the rest once every process exists.
class Morph;
struct MorphContext {
  std::unique_ptr<RemoteSyscalls> rs;
  std::unique_ptr<Morph> morph;
  uint64_t scratch = 0;
  PidPlacement* pids = nullptr;  // how its threads get their IDs back
  // Set: the task takes these credentials once its threads exist and before its files and
  // capabilities (a tree's stubs run as the restorer until then: their children and threads are made
  // with clone3 set_tid; nginx's workers ran as another user than their master). Never more than the
  // stub had: the kernel refuses anything else, and the restore fails naming it.
  const Creds* creds = nullptr;
  LazyRequest* lazy = nullptr;  // a lazy restore's (a single task's: a tree's children are forked eagerly)
  MorphContext();
  ~MorphContext();
};
void morph_memory(MorphContext& c, SeizedTask& task, const TaskImage& img, const std::string& pages_path,
                  PagesVerification* verify, bool inherit);
MorphedTask morph_rest(MorphContext& c, const TaskImage& img, RestoreScope& files);
void release_morphed(SeizedTask& task, const TaskImage& img, MorphedTask& morphed);

// Checks an image for what restore_task relies on (pure; exposed for tests). Throws CoreError.
void validate_image(const TaskImage& image);

// Only a waiting restore stub may be morphed: never an arbitrary process someone names. Throws.
void check_is_stub(int pid);

// The stub a restore starts for a saved root task: with the saved PID when its image needs it
// (`need_id`: threads or a tree); as the init of a PID namespace of its own when the task was one;
// otherwise with any PID. Throws when the image cannot be given the ID it needs.
std::unique_ptr<class StubProcess> start_stub_for(const TaskImage& root, bool need_id, const std::string& stub_path, long uid,
                                                  long gid, const std::vector<int>& pass_fds = {});
// For a stub someone else started (a container's): checks it is one, and that it has the saved ID
// (in its own PID namespace) when the image needs it.
std::unique_ptr<class StubProcess> adopt_stub_for(const TaskImage& root, bool need_id, int stub_pid);

// An ID no task or thread of these images uses (for the PID-namespace helper).
int spare_id(const std::vector<const TaskImage*>& tasks);

}  // namespace cryopod
