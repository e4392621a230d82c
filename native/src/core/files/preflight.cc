#include "preflight.h"

#include <map>
#include <set>
#include <sstream>

#include "../dump_steps.h"
#include "../errors.h"
#include "../proc.h"
#include "inherit.h"
#include "pipe.h"

namespace cryopod {

namespace {

std::vector<int> tree_pids(int root) {
  std::vector<int> pids{root};
  std::set<int> seen{root};
  for (size_t i = 0; i < pids.size() && pids.size() < 4096; ++i) {
    std::vector<int> tids;
    try {
      tids = list_tasks(pids[i]);
    } catch (const CoreError&) {
      continue;  // exited meanwhile
    }
    for (int tid : tids) {
      std::string text;
      try {
        text = read_text("/proc/" + std::to_string(pids[i]) + "/task/" + std::to_string(tid) + "/children");
      } catch (const CoreError&) {
        continue;
      }
      std::istringstream in(text);
      int child;
      while (in >> child)
        if (seen.insert(child).second) pids.push_back(child);
    }
  }
  return pids;
}

}  // namespace

std::vector<FdReport> preflight_tree(int root) {
  std::vector<int> pids = tree_pids(root);
  std::set<int> members(pids.begin(), pids.end());
  std::vector<FdReport> out;
  for (int pid : pids) {
    try {
      for (FdReport& r : check_files(pid)) out.push_back(std::move(r));
    } catch (const CoreError& e) {
      if (pid == root) throw;  // a descendant that exited meanwhile holds nothing
    }
  }
  // A pipe held outside the tree too is external: saved by identity, re-attached on restore.
  std::set<uint64_t> pipes;
  for (const FdReport& r : out)
    if (r.kind == "pipe") pipes.insert(std::strtoull(r.object.c_str() + 6, nullptr, 10));
  if (!pipes.empty()) {
    std::map<uint64_t, int> outsider;
    for (const auto& [id, holders] : pipe_holders(pipes))
      for (int h : holders)
        if (!members.count(h)) outsider[id] = h;
    for (FdReport& r : out) {
      if (r.kind != "pipe") continue;
      auto it = outsider.find(std::strtoull(r.object.c_str() + 6, nullptr, 10));
      if (it == outsider.end()) {
        r.verdict.note = "a pipe inside the tree, saved with its bytes";
      } else {
        r.verdict.status = FileVerdict::External;
        r.verdict.note = "also held by " + task_name(it->second) + ", outside the tree: re-attached on restore to an fd "
                         "the restorer provides (--inherit-fd " + std::to_string(r.fd) + ":<fd or path>" +
                         (r.fd <= 2 ? "; by default the restorer's own)" : ")");
      }
    }
  }
  return out;
}

void refuse_unsaveable(const std::vector<FdReport>& reports) {
  for (const FdReport& r : reports)
    if (r.verdict.status == FileVerdict::Refused)
      throw CoreError("EUNSUPPORTED", task_name(r.pid) + ": fd " + std::to_string(r.fd) + " (" + r.object + "): " + r.verdict.note);
}

}  // namespace cryopod
