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
};

// Returns the root's PID (every PID is the saved one: a tree is restored only with its own PIDs).
int restore_tree(const TreeImage& tree, const TreeRestoreRequest& req);

}  // namespace cryopod
