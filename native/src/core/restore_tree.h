// Restore of a process tree: one stub per process, forked from its parent's stub with the saved PID
// (clone3 set_tid), sessions and process groups set up again, pipes created once and opened by every
// holder, then each stub morphed into its task, and all let go together.
#pragma once

#include <string>
#include <vector>

#include "restore.h"
#include "task_model.h"

namespace cryopod {

struct TreeRestoreRequest {
  std::vector<std::string> pages_paths;  // one per task, tree order
  std::string stub_path;
  long uid = -1, gid = -1;
  // Morph this running stub (a restore pod's container) into the root instead of starting one.
  int stub_pid = 0;
  // The manifest's digests of the pages images, checked by the fills (page_fill.h); null: none.
  PagesVerification* verify = nullptr;
  std::vector<InheritFd> inherit;  // as RestoreRequest::inherit
  int phase_fd = -1;                // as RestoreRequest::phase_fd (memory: once every task's is filled)
};

// Returns the root's PID in our namespace. Every task keeps its saved ID: in ours, or (a tree dumped
// inside a container) in the stub's PID namespace, a new one when the restore starts the stub.
int restore_tree(const TreeImage& tree, const TreeRestoreRequest& req);

}  // namespace cryopod
