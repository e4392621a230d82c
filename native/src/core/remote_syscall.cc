#include "remote_syscall.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"
#include "proc.h"

namespace cryopod {

RemoteSyscalls::RemoteSyscalls(SeizedTask& task, uint64_t gadget) : task_(task), gadget_(gadget) {
  // A task under seccomp filters might forbid the calls we make on its behalf: suspend them while we
  // trace it, where we may (the filters stay in force for the task itself).
  try {
    if (read_text("/proc/" + std::to_string(task.pid()) + "/status").find("\nSeccomp:\t2") != std::string::npos) task.suspend_seccomp();
  } catch (const CoreError&) {
  }
}

long RemoteSyscalls::call(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
  if (!signals_blocked_) {
    task_.set_signal_mask(~0ULL);  // the kernel keeps SIGKILL and SIGSTOP deliverable regardless
    signals_blocked_ = true;
  }
  user_regs_struct r = task_.original_regs();
  r.rax = nr;
  r.orig_rax = (unsigned long long)-1;
  r.rdi = a1;
  r.rsi = a2;
  r.rdx = a3;
  r.r10 = a4;
  r.r8 = a5;
  r.r9 = a6;
  r.rip = gadget_;
  task_.set_regs(r);
  task_.step_to_syscall_stop();  // entry
  user_regs_struct at_entry = task_.regs();
  if ((long)at_entry.orig_rax != nr)
    throw CoreError("EREMOTE", "remote syscall " + std::to_string(nr) + " entered as " +
                                   std::to_string((long)at_entry.orig_rax) + " (bad gadget?)");
  task_.step_to_syscall_stop();  // exit
  return (long)task_.regs().rax;
}

long RemoteSyscalls::must(const std::string& what, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                          uint64_t a5, uint64_t a6) {
  long r = call(nr, a1, a2, a3, a4, a5, a6);
  if (r < 0 && r > -4096) throw_errno("in pid " + std::to_string(task_.pid()) + ": " + what, (int)-r);
  return r;
}

void remote_read(int pid, uint64_t addr, void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    iovec local{(char*)buf + done, len - done};
    iovec remote{(void*)(addr + done), len - done};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) throw_errno("process_vm_readv pid " + std::to_string(pid), n == 0 ? EIO : errno);
    done += n;
  }
}

void remote_write(int pid, uint64_t addr, const void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    iovec local{(char*)buf + done, len - done};
    iovec remote{(void*)(addr + done), len - done};
    ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) throw_errno("process_vm_writev pid " + std::to_string(pid), n == 0 ? EIO : errno);
    done += n;
  }
}

void remote_mem_read(int pid, uint64_t addr, void* buf, size_t len) {
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", path);
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(fd, (char*)buf + done, len - done, (off_t)(addr + done));
    if (n <= 0) {
      int e = n == 0 ? EIO : errno;
      close(fd);
      throw_errno_at("read", path, e);
    }
    done += n;
  }
  close(fd);
}

long find_syscall_bytes(const std::vector<uint8_t>& code) {
  for (size_t i = 0; i + 1 < code.size(); ++i)
    if (code[i] == 0x0f && code[i + 1] == 0x05) return (long)i;
  return -1;
}

}  // namespace cryopod
