// The steps of a dump, shared by the dump of one process (dump.cc) and of a process tree
// (dump_tree.cc): stopping threads, reading what ptrace and /proc report, asking the task itself
// (remote syscalls) for the rest, and letting go.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cgroup_freezer.h"
#include "files/file_driver.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "task_model.h"

namespace cryopod {

constexpr size_t kMaxThreads = 4096;

std::string task_name(int pid);
std::vector<int> list_tasks(int pid);

// Refuses, before touching the task, what cannot be dumped (missing, zombie, traced, our own child).
void check_dumpable(int pid);

// Registers as a restore must load them: an interrupted syscall set up to run again.
std::vector<uint8_t> resumable_regs(const user_regs_struct& live);

// Identity, mm fields, exe/cwd/root, credentials from /proc.
void read_identity(int pid, TaskImage& t);
// What ptrace reports of one stopped thread.
ThreadState thread_registers(SeizedTask& task);
// Signal handlers, brk, sockets' details, and every thread's clear_child_tid and sigaltstack. `scratch`:
// a page of the task's for the calls' arguments (the parasite's, while it is mapped), else one is mapped.
void collect_in_task_state(SeizedTask& main, RemoteSyscalls& rs, std::vector<std::unique_ptr<SeizedTask>>& others,
                           uint64_t gadget, TaskImage& t,
                           uint64_t scratch = 0);

// Seizes the threads but the main one, until none is left running.
std::vector<std::unique_ptr<SeizedTask>> seize_other_threads(int pid);
// Seizes every thread of these tasks while their cgroup is frozen (nothing can clone or fork, so one
// listing is complete; the interrupts are queued while frozen), thaws it into the ptrace stops, and
// returns each task's threads, its main thread first. On failure: thaw, then detach all.
std::vector<std::vector<std::unique_ptr<SeizedTask>>> seize_while_frozen(const std::vector<int>& pids, CgroupFreezer& freezer);
// The same for one task: its main thread, the others in `others`.
std::unique_ptr<SeizedTask> seize_frozen(int pid, CgroupFreezer& freezer, std::vector<std::unique_ptr<SeizedTask>>& others);
// Kills a task whose threads are all stopped, collecting every thread's exit.
void kill_all(SeizedTask& main, std::vector<std::unique_ptr<SeizedTask>>& others);

bool snapshot_possible(const std::vector<Vma>& vmas);
void fsync_if_file(int fd, const std::string& path);
// The snapshot child is a zombie child of the task once drained; only the task can reap it.
void reap_through_task(int pid, int child_in_task, int child_host, uint64_t gadget, int phase_fd = -1);

}  // namespace cryopod
