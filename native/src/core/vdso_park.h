// A parking gadget for the remote syscalls that cannot run on the parasite's area (the two that make it,
// its final munmap, the snapshot child's reap), so that a dumper killed at one of their ptrace stops
// leaves the task parked, not running on with the dumper's registers.
//
// Where: the zero padding at the very end of the task's vDSO (the image is page-rounded; nothing is ever
// executed there), written through /proc/PID/mem as a debugger writes a breakpoint:
//
//   +0  0f 05            syscall          ◄── the gadget
//   +2  b8 22 00 00 00   mov $34, %eax    ◄── the park: pause() with every signal blocked, forever
//   +7  0f 05            syscall
//   +9  eb f7            jmp +2
//
// and, below the task's stack pointer (dead stack, past the red zone and the memfd's name), a note of
// its own registers and mask as seized. A rescuer that finds the main thread in this park (rescue.cc)
// puts them back from the note and zeroes the padding again. Without 11 zero bytes there (never seen on
// x86-64), or without a mapped stack below the pointer, the park is not armed and the calls run on the
// vDSO's own `syscall` as before.
#pragma once

#include <cstdint>
#include <memory>

#include "seized_task.h"

namespace cryopod {

constexpr uint64_t kVdsoParkMagic = 0x6b72615061646456ULL;  // "VddaPark" in memory order
constexpr int kVdsoParkLen = 11;

struct VdsoParkNote {
  uint64_t magic;
  int32_t pid;
  int32_t pad;
  uint64_t gadget;  // the park's gadget (its address in the task)
  uint64_t sigmask;
  uint64_t regs[27];  // struct user_regs_struct
};

class VdsoPark {
 public:
  // Arms the park for `task` (seized, stopped) as it is now. gadget(): 0 when it could not be armed.
  explicit VdsoPark(SeizedTask& task);
  ~VdsoPark();
  uint64_t gadget() const { return gadget_; }
  // Zeroes the padding again (harmless at any time: nothing runs there but our calls).
  void disarm();

 private:
  int pid_;
  uint64_t gadget_ = 0;
};

// Where the note of a task parked with these registers is (the park keeps the original stack pointer).
uint64_t vdso_park_note_at(uint64_t rsp);

// For the rescue: if the task's main thread (seized) is in an armed park with a note for it, the note.
std::unique_ptr<VdsoParkNote> parked_in_vdso(SeizedTask& task);
// Zeroes a park's padding in a task (the rescue, once it has put the task back).
void clear_vdso_park(int pid, uint64_t gadget);

}  // namespace cryopod
