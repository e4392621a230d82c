#include "preflight.h"

#include <unistd.h>

#include <map>
#include <set>
#include <sstream>

#include "../dump_steps.h"
#include "../errors.h"
#include "../proc.h"
#include "inherit.h"
#include "pipe.h"
#include "shared_files.h"
#include "unix_socket.h"

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

// The preflight runs while the tree runs: a child forked after the tree was listed (PostgreSQL's
// backend for a new connection) holds the objects its parent does and is no outsider. A process is in
// the tree if it or one of its ancestors was listed.
bool in_tree(const std::set<int>& members, int pid) {
  for (int p = pid, hops = 0; p > 1 && hops < 64; ++hops) {
    if (members.count(p)) return true;
    try {
      p = read_stat(p).ppid;
    } catch (const CoreError&) {
      return true;  // exited meanwhile: it holds nothing any more
    }
  }
  return false;
}

// Who outside `members` holds each of these objects ("socket:[ino]"), one walk over every process.
std::map<std::string, int> outside_holders(const std::set<std::string>& objects, const std::set<int>& members) {
  std::map<std::string, int> found;
  if (objects.empty()) return found;
  int last_pid = -1;
  bool last_in_tree = false;  // the walk goes process by process: one ancestry check per process
  for_each_open_fd([&](int pid, int fd_dir, const char* name) {
    if (pid != last_pid) last_pid = pid, last_in_tree = in_tree(members, pid);
    if (last_in_tree) return;
    char buf[64];
    ssize_t n = readlinkat(fd_dir, name, buf, sizeof buf - 1);
    if (n <= 0) return;
    std::string link(buf, (size_t)n);
    if (objects.count(link) && !found.count(link)) found[link] = pid;
  });
  return found;
}

// An fd that holds the same open file as an earlier one (dup'd, or inherited across fork) says so: the
// restore re-creates it once and hands it to every holder.
void note_shared(std::vector<FdReport>& reports) {
  std::vector<FdRef> fds;
  for (const FdReport& r : reports) fds.push_back({r.pid, r.fd});
  std::vector<size_t> first;
  try {
    first = first_holders(fds);
  } catch (const CoreError&) {
    return;  // an fd closed meanwhile: the dump compares them again, frozen
  }
  for (size_t i = 0; i < reports.size(); ++i) {
    if (first[i] == i || reports[i].verdict.status == FileVerdict::Refused) continue;
    const FdReport& f = reports[first[i]];
    // An external fd at another number than the first holder's takes its own source (inherit.h).
    if (reports[i].verdict.status == FileVerdict::External && f.fd != reports[i].fd) continue;
    reports[i].verdict.note += std::string(reports[i].verdict.note.empty() ? "" : "; ") + "one open file with " +
                               (f.pid == reports[i].pid ? "fd " + std::to_string(f.fd) : task_name(f.pid) + " fd " + std::to_string(f.fd)) +
                               " (re-created once, handed to each holder)";
  }
}

}  // namespace

void settle_unix_peers(std::vector<FdReport>& reports, const std::set<int>& members) {
  std::map<std::string, const FdReport*> in_tree;  // "socket:[ino]" → a holder in the tree
  for (const FdReport& r : reports)
    if (!in_tree.count(r.object)) in_tree[r.object] = &r;
  std::map<const FdReport*, std::string> peer_of;  // connected unix sockets of the tree → their peer
  std::set<std::string> objects;
  for (FdReport& r : reports) {
    if (r.kind != "unix" || r.verdict.status != FileVerdict::Saved) continue;
    objects.insert(r.object);
    try {
      uint64_t peer = unix_peer_of(probe_fd(r.pid, r.fd));
      if (peer == 0) continue;
      peer_of[&r] = "socket:[" + std::to_string(peer) + "]";
      objects.insert(peer_of[&r]);
    } catch (const CoreError& e) {
      r.verdict = {FileVerdict::Refused, e.what()};
    }
  }
  // A socket, or its peer, that a process outside the tree holds too would be split in two by a restore
  // (the outsider keeps the old one): refused, naming the outsider.
  std::map<std::string, int> outside = outside_holders(objects, members);
  for (FdReport& r : reports) {
    if (r.kind != "unix" || r.verdict.status != FileVerdict::Saved) continue;
    auto self_out = outside.find(r.object);
    if (self_out != outside.end()) {
      r.verdict = {FileVerdict::Refused, "also held by " + task_name(self_out->second) +
                                             ", outside the dumped tree: a unix socket shared with a process outside the "
                                             "checkpoint cannot be saved"};
      continue;
    }
    auto p = peer_of.find(&r);
    if (p == peer_of.end()) continue;
    const std::string& object = p->second;
    auto it = in_tree.find(object);
    auto peer_out = outside.find(object);
    if (it != in_tree.end() && peer_out == outside.end()) {
      if (it->second->pid != r.pid)
        r.verdict.note = "connected to " + task_name(it->second->pid) + " fd " + std::to_string(it->second->fd) +
                         ", inside the tree: restored as a socketpair with the bytes queued both ways";
      continue;
    }
    r.verdict.status = FileVerdict::Refused;
    if (peer_out != outside.end())
      r.verdict.note = "connected to " + object + ", held by " + task_name(peer_out->second) +
                       ", outside the dumped tree: a unix connection to a process outside the checkpoint "
                       "cannot be saved (checkpoint that process too, or close the connection first)";
    else
      r.verdict.note = "connected to " + object + ", which no process holds (in flight in an SCM_RIGHTS message?): not supported";
  }
}

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
        if (!in_tree(members, h)) outsider[id] = h;
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
  settle_unix_peers(out, members);
  note_shared(out);
  return out;
}

void refuse_unsaveable(const std::vector<FdReport>& reports) {
  for (const FdReport& r : reports)
    if (r.verdict.status == FileVerdict::Refused)
      throw CoreError("EUNSUPPORTED", task_name(r.pid) + ": fd " + std::to_string(r.fd) + " (" + r.object + "): " + r.verdict.note);
}

}  // namespace cryopod
