// Puts back a task whose dumper died (SIGKILL, OOM, a node agent restart) before it was done with it.
//
// What a dead dumper can leave, and why each is bounded (docs/native.md, "When the dumper dies"):
//   the task parked in the parasite's area   the blob parks on FINI and on EOF of its control socket and
//                                            never traps; remote syscalls run on the area's own gadget,
//                                            followed by the same park: ptrace's detach at the tracer's
//                                            exit resumes the task into the park, not into a SIGTRAP
//   the task's registers, mask, XSAVE        saved in the area's rescue record before the blob ran
//   fds the infection added                  listed in the record by inode (a socket, a pipe)
//   a snapshot child (--leave-running)        exits by itself on EOF of its socket; its zombie (exit
//                                            signal 0: its parent never sees it) is reaped here
//   the task in a group stop (SIGSTOP)        resumed here when the caller says the stop was ours
//
//   rescue_task(pid): wait until no tracer ─► area in /proc/PID/maps with the record's magic (or only
//     the memfd in its fd table: the dumper died before the task mapped it; then just the mask and fd)?
//     ─► seize the main thread ─► rip in the area: adopt the record's registers and mask
//     ─► seize every other thread the record names: the same, from its slot
//     ─► close the record's fds (area gadget) ─► reap the snapshot zombie (wait4 in the task)
//     ─► munmap the area (vDSO gadget) ─► XSAVE back ─► detach (registers, mask) ─► SIGCONT if asked
#pragma once

#include <cstdint>
#include <string>

namespace cryopod {

struct RescueRequest {
  int pid = 0;
  // Zombie children with exit signal 0 started at or after this (clock ticks after boot, as
  // /proc/PID/stat field 22) are snapshot children to reap; 0: any such zombie.
  uint64_t children_since = 0;
  // The task is in a group stop the dumper put it in (not the user): SIGCONT it.
  bool resume_stopped = false;
  // How long to wait for a dead dumper's ptrace detach to take effect (TracerPid 0).
  int untraced_timeout_ms = 10000;
};

struct RescueReport {
  bool gone = false;            // the task no longer exists
  bool infected = false;        // a parasite area with our rescue record was found
  bool registers_restored = false;  // the main thread was in the area: its saved state was put back
  int threads_restored = 0;     // other threads parked in the area, their saved registers put back
  int fds_closed = 0;
  int children_reaped = 0;
  bool resumed = false;         // SIGCONT was sent
};

RescueReport rescue_task(const RescueRequest& req);

}  // namespace cryopod
