#include "parasite_check.h"

#include <cstring>

#include "parasite.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "vmas.h"

namespace cryopod {

ParasiteCheck parasite_round_trips(int pid, const std::string& blob_path, int iterations) {
  ParasiteCheck c;
  for (int i = 0; i < iterations; ++i) {
    SeizedTask task(pid);
    std::vector<uint8_t> xs_before = task.xsave();
    {
      RemoteSyscalls rs(task, find_vdso_syscall(pid, collect_vmas(pid)));
      Parasite p(task, rs, blob_path, 2);
      if (p.getpid() != pid) c.wrong_pid++;
      p.cure();
    }
    // The registers seized, exactly, unless the stop had cut a syscall short: then that syscall is set
    // up to run again (regs_to_put_back), as the task would have done on its own.
    user_regs_struct expected = task.regs_to_put_back();
    task.put_back();
    user_regs_struct after = task.regs();
    if (std::memcmp(&expected, &after, sizeof expected) != 0) c.regs_changed++;
    if (task.xsave() != xs_before) c.xsave_changed++;
    task.detach();
    c.iterations++;
  }
  return c;
}

}  // namespace cryopod
