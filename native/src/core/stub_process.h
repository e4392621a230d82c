// The waiting stub a restore morphs into the saved task.
//
// spawn: fork → setsid → clone3 with the saved PID (or into a new PID namespace), or fork (the stub is orphaned to init, so it is nobody's child here and a CLI that
// exits does not take it along) → stdio on /dev/null, fd 3 the ready pipe, credentials dropped → exec.
// The stub writes one byte on fd 3 and waits in pause(); the byte tells us exec succeeded.
// A StubProcess kills the stub in its destructor unless release() was called: a failed restore leaves
// nothing behind.
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>

namespace cryopod {

constexpr int kPassedFdBase = 200;

class StubProcess {
 public:
  // uid/gid < 0: keep the caller's credentials. want_pid > 0: start the stub with that PID
  // (clone3 set_tid) when it is free; if it is not, fail when pid_required, else take any PID.
  // new_pid_ns: start it as the init (PID 1) of a PID namespace of its own instead.
  // pass_fds: fds of ours the stub gets too, pass_fds[i] as its fd kPassedFdBase + i (the fds a restore
  // re-attaches external pipes to: --inherit-fd, the restorer's own stdio).
  StubProcess(const std::string& stub_path, long uid, long gid, int want_pid = 0, bool pid_required = false,
              bool new_pid_ns = false, const std::vector<int>& pass_fds = {});
  ~StubProcess();
  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;

  // Takes over a stub someone else started (a container's). It is killed on failure too: the pod then
  // fails visibly rather than running a half-restored process.
  explicit StubProcess(pid_t existing) : pid_(existing) {}
  pid_t pid() const { return pid_; }
  void release() { released_ = true; }

 private:
  pid_t pid_ = -1;
  bool released_ = false;
};

}  // namespace cryopod
