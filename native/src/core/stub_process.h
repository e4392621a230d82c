// The waiting stub a restore morphs into the saved task.
//
// spawn: fork → setsid → fork (the stub is orphaned to init, so it is nobody's child here and a CLI that
// exits does not take it along) → stdio on /dev/null, fd 3 the ready pipe, credentials dropped → exec.
// The stub writes one byte on fd 3 and waits in pause(); the byte tells us exec succeeded.
// A StubProcess kills the stub in its destructor unless release() was called: a failed restore leaves
// nothing behind.
#pragma once

#include <string>
#include <sys/types.h>

namespace cryopod {

class StubProcess {
 public:
  // uid/gid < 0: keep the caller's credentials.
  StubProcess(const std::string& stub_path, long uid, long gid);
  ~StubProcess();
  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;

  pid_t pid() const { return pid_; }
  void release() { released_ = true; }

 private:
  pid_t pid_ = -1;
  bool released_ = false;
};

}  // namespace cryopod
