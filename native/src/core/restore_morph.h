// Internal to the restore: the task being morphed (its remote syscalls and a scratch area for their
// arguments), and the memory half of a morph, shared by restore.cc (files, state, threads) and
// restore_memory.cc (address space).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "task_model.h"

namespace cryopod {

constexpr uint64_t kScratchSize = 64 * 1024;

// The state of one restore: the task, its remote syscalls and a scratch page for arguments.
class Morph {
 public:
  Morph(SeizedTask& task, RemoteSyscalls& rs) : task_(task), rs_(rs) {}

  void set_scratch(uint64_t addr) { scratch_ = addr; }
  uint64_t scratch() const { return scratch_; }

  // Puts bytes at scratch+off in the task and returns their remote address.
  uint64_t put(uint64_t off, const void* data, size_t len) {
    if (off + len > kScratchSize) throw CoreError("E2BIG", "scratch area overflow");
    remote_write(task_.pid(), scratch_ + off, data, len);
    return scratch_ + off;
  }
  uint64_t put_string(uint64_t off, const std::string& s) { return put(off, s.c_str(), s.size() + 1); }

  SeizedTask& task() { return task_; }
  RemoteSyscalls& rs() { return rs_; }

 private:
  SeizedTask& task_;
  RemoteSyscalls& rs_;
  uint64_t scratch_ = 0;
};

// A free range of `len` bytes that overlaps none of `taken`.
uint64_t find_free_range(uint64_t len, const std::vector<std::pair<uint64_t, uint64_t>>& taken);

}  // namespace cryopod
