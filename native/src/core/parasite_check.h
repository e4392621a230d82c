// A self-check of the parasite's promise: infect a task, talk to the blob, cure it, and compare the
// task's registers and XSAVE area after the cure with what they were before. Used by the tests that
// infect and cure a victim many times.
#pragma once

#include <string>

namespace cryopod {

struct ParasiteCheck {
  int iterations = 0;
  int regs_changed = 0;   // iterations whose general registers differed after the cure
  int xsave_changed = 0;  // iterations whose XSAVE area differed
  int wrong_pid = 0;      // iterations where the blob's getpid() was not the task's pid
};

ParasiteCheck parasite_round_trips(int pid, const std::string& blob_path, int iterations);

}  // namespace cryopod
