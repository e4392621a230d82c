// Dump of a process tree: the root and every descendant, all frozen together (every thread of every
// process seized, repeating until no process is left running that could still fork), each dumped as
// one task with its own pages image, the pipes among them with the bytes they hold, then all let go
// together. A pipe or other file shared with a process outside the tree is refused: a restore could not
// reconnect it.
#pragma once

#include <string>

#include "dump.h"
#include "task_model.h"

namespace cryopod {

struct TreeDumpRequest : DumpOptions {
  int root_pid = 0;
  // Pages image of task i (tree order) is pages_dir/pages-<i+1>.img.
  std::string pages_dir;
};

TreeImage dump_tree(const TreeDumpRequest& req);

std::string pages_file_of(const std::string& dir, size_t index);

}  // namespace cryopod
