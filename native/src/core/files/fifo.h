// Named pipes (FIFOs): reopened by path, so one held outside the tree too reconnects to that very FIFO
// with what it holds; one held only by the tree is saved with its bytes, once.
#pragma once

#include <set>
#include <vector>

#include "../task_model.h"

namespace cryopod {

// After every task's fds are dumped: a FIFO's bytes stay on the first fd that holds it and are dropped
// from the others; a FIFO also open in a process outside `members` keeps none (the FIFO itself lives on).
void settle_fifo_bytes(const std::vector<TaskImage*>& tasks, const std::set<int>& members);

}  // namespace cryopod
