#include "pid_namespace.h"

#include <sys/stat.h>

#include <map>
#include <string>

#include "errors.h"
#include "dump_steps.h"
#include "proc.h"

namespace cryopod {

namespace {
uint64_t ns_inode(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) throw_errno_at("stat", path);
  return st.st_ino;
}

int innermost(const std::vector<int>& ids, int host, const char* what) {
  if (ids.empty()) throw CoreError("EIO", "no " + std::string(what) + " line in /proc/" + std::to_string(host) + "/status");
  return ids.back();
}
}  // namespace

uint64_t pid_namespace_of(int pid) { return ns_inode("/proc/" + std::to_string(pid) + "/ns/pid"); }

bool in_our_pid_namespace(int pid) { return pid_namespace_of(pid) == ns_inode("/proc/self/ns/pid"); }

void to_namespace_ids(const std::vector<TaskImage*>& tasks) {
  for (TaskImage* t : tasks) t->host_pid = t->pid;
  if (tasks.empty() || in_our_pid_namespace(tasks[0]->pid)) return;
  uint64_t ns = pid_namespace_of(tasks[0]->pid);
  std::map<int, int> inside;  // host PID → PID in the namespace, for every task of the tree
  std::vector<ProcStatus> status;
  for (TaskImage* t : tasks) {
    if (pid_namespace_of(t->pid) != ns)
      throw CoreError("EUNSUPPORTED", task_name(t->pid) + " lives in another PID namespace than " + task_name(tasks[0]->pid) +
                                          ", the root of the checkpoint: nested PID namespaces are not supported");
    status.push_back(read_status(t->pid));
    inside[t->pid] = innermost(status.back().ns_pid, t->pid, "NSpid");
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    TaskImage& t = *tasks[i];
    const ProcStatus& st = status[i];
    int host = t.pid;
    if (inside.count(t.ppid)) {
      t.ppid = inside[t.ppid];
    } else {
      // The root's parent: inside the namespace when a subtree is dumped, else (the namespace's init) 0.
      bool parent_inside = false;
      try {
        parent_inside = t.ppid > 0 && pid_namespace_of(t.ppid) == ns;
      } catch (const CoreError&) {
      }
      t.ppid = parent_inside ? innermost(read_status(t.ppid).ns_pid, t.ppid, "NSpid") : 0;
    }
    t.pgid = innermost(st.ns_pgid, host, "NSpgid");
    t.sid = innermost(st.ns_sid, host, "NSsid");
    t.main.tid = inside[host];
    for (ThreadState& th : t.threads) th.tid = innermost(read_thread_status(host, th.tid).ns_pid, th.tid, "NSpid");
    t.pid = inside[host];
    t.own_pid_ns = true;
  }
}

}  // namespace cryopod
