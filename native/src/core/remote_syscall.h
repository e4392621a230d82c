// System calls run inside a seized task, on its behalf, without injecting code.
//
// The task's rip is pointed at a `syscall` instruction (0f 05) that already exists in its address space
// (in the vDSO, or any executable mapping): the gadget. PTRACE_SYSCALL runs it to the syscall-entry stop
// and on to the exit stop, where rax holds the result. Nothing after the two bytes is ever executed, so the
// gadget needs no instruction boundary and no trailing int3.
//
//   regs: rax=nr rdi rsi rdx r10 r8 r9, rip=gadget, orig_rax=-1 (no restart processing)
//        │ PTRACE_SYSCALL            │ PTRACE_SYSCALL
//        ▼                           ▼
//   syscall-entry stop  ─────►  syscall-exit stop: rax = result (or -errno)
//
// All signals are blocked in the task while it runs remote calls, so none is delivered in between; the
// SeizedTask puts the original mask and registers back when it detaches.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "seized_task.h"

namespace cryopod {

class RemoteSyscalls {
 public:
  RemoteSyscalls(SeizedTask& task, uint64_t gadget);

  // Returns the raw result: a value, or -errno.
  long call(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0, uint64_t a5 = 0,
            uint64_t a6 = 0);
  // Like call(), but throws a CoreError naming `what` when the result is an error.
  long must(const std::string& what, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
            uint64_t a5 = 0, uint64_t a6 = 0);

  void set_gadget(uint64_t gadget) { gadget_ = gadget; }
  uint64_t gadget() const { return gadget_; }
  SeizedTask& task() { return task_; }

 private:
  SeizedTask& task_;
  uint64_t gadget_;
  bool signals_blocked_ = false;
};

// Memory of another process, through process_vm_{readv,writev} (fast, respects protections) and
// /proc/PID/mem (FOLL_FORCE: reads special mappings such as the vDSO and writes read-only pages).
void remote_read(int pid, uint64_t addr, void* buf, size_t len);
void remote_write(int pid, uint64_t addr, const void* buf, size_t len);
void remote_mem_read(int pid, uint64_t addr, void* buf, size_t len);

// Finds the offset of a `0f 05` byte pair in a buffer, or -1.
long find_syscall_bytes(const std::vector<uint8_t>& code);

}  // namespace cryopod
