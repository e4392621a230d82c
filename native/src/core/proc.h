// Readers of /proc/PID: the task's identity, state, mm fields, VMAs (smaps) and open files.
// Everything here is read without stopping the task; callers decide when the snapshot must be frozen.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cryopod {

std::string read_text(const std::string& path);
std::vector<uint8_t> read_binary(const std::string& path);
std::string read_link(const std::string& path);

struct ProcStatus {
  char state = '?';  // R, S, D, T, t, Z, X, ...
  int threads = 0;
  int tracer_pid = 0;
  uint32_t umask = 022;
  uint32_t uid[4] = {0, 0, 0, 0};  // real, effective, saved, fs
  uint32_t gid[4] = {0, 0, 0, 0};
  // NSpid, NSpgid, NSsid: the ID in every PID namespace the task is visible in, ours first, its own last.
  std::vector<int> ns_pid, ns_pgid, ns_sid;
};
ProcStatus read_status(int pid);
// The same for one thread (/proc/PID/task/TID/status).
ProcStatus read_thread_status(int pid, int tid);

struct ProcStat {
  char state = '?';
  int ppid = 0, pgrp = 0, session = 0;
  uint64_t starttime = 0;  // clock ticks after boot: with the PID, names one process for good
  uint64_t start_code = 0, end_code = 0, start_stack = 0;
  uint64_t start_data = 0, end_data = 0, start_brk = 0;
  uint64_t arg_start = 0, arg_end = 0, env_start = 0, env_end = 0;
};
ProcStat read_stat(int pid);

// One smaps entry: the maps line plus the VmFlags two-letter codes.
struct SmapsEntry {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms;  // "rw-p"
  uint64_t dev = 0, inode = 0;
  std::string name;
  std::vector<std::string> vm_flags;
  bool has_flag(const char* f) const;
};
std::vector<SmapsEntry> read_smaps(int pid);
// "smaps" (VmFlags, but it walks every page table to count RSS: ~13 ms per GiB mapped) or "maps"
// (the same lines without VmFlags, at no cost).
std::vector<SmapsEntry> read_maps_file(int pid, const char* which);

struct FdInfo {
  uint64_t pos = 0;
  int flags = 0;  // octal in the file
};
FdInfo read_fdinfo(int pid, int fd);
std::vector<int> list_fds(int pid);

}  // namespace cryopod
