// The preflight of a dump (`cryopod dump --check`, and the agent before it freezes anything): every
// object the process tree holds and whether it can be saved, read from /proc only (no task is stopped).
// A dump runs it first and refuses, before stopping anything, the first object that cannot be saved.
#pragma once

#include <set>
#include <vector>

#include "file_driver.h"

namespace cryopod {

// Every fd of the tree rooted at `root` (its current descendants), in tree order.
std::vector<FdReport> preflight_tree(int root);

// A unix socket connected to a process of `members` is saved; one connected outside them is refused,
// naming who holds its peer (the kind alone cannot tell: it sees one process).
void settle_unix_peers(std::vector<FdReport>& reports, const std::set<int>& members);

// Throws EUNSUPPORTED naming the first refused object of a preflight.
void refuse_unsaveable(const std::vector<FdReport>& reports);

}  // namespace cryopod
