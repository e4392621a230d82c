#include "restore.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <sched.h>

#include "errors.h"
#include "image_checks.h"
#include "lazy_pager.h"
#include "page_bitmap.h"
#include "page_copy.h"
#include "phase.h"
#include "pid_placement.h"
#include "proc.h"
#include "process_state.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "stub_process.h"
#include "restore_morph.h"
#include "vmas.h"
#include "files/file_driver.h"
#include "files/inherit.h"

namespace cryopod {



MorphContext::MorphContext() = default;
MorphContext::~MorphContext() = default;

namespace {


// struct prctl_mm_map (include/uapi/linux/prctl.h)
struct MmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

struct KernelSigaction {
  uint64_t handler, flags, restorer, mask;
};

void restore_mm(Morph& m, const TaskImage& img) {
  uint64_t auxv = m.put(4096, img.mm.auxv.data(), img.mm.auxv.size());
  uint64_t exe_path = m.put_string(0, img.exe);
  long exe_fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, exe_path, O_RDONLY | O_CLOEXEC, 0);
  MmMap map{img.mm.start_code, img.mm.end_code, img.mm.start_data, img.mm.end_data, img.mm.start_brk,
            img.mm.brk,        img.mm.start_stack, img.mm.arg_start, img.mm.arg_end, img.mm.env_start,
            img.mm.env_end,    auxv, (uint32_t)img.mm.auxv.size(), exe_fd >= 0 ? (uint32_t)exe_fd : (uint32_t)-1};
  uint64_t addr = m.put(2048, &map, sizeof map);
  long r = m.rs().call(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, addr, sizeof map, 0);
  if (r == -EPERM && exe_fd >= 0) {
    // Changing /proc/PID/exe needs CAP_CHECKPOINT_RESTORE in the task; without it keep the stub's.
    map.exe_fd = (uint32_t)-1;
    m.put(2048, &map, sizeof map);
    r = m.rs().call(SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, addr, sizeof map, 0);
  }
  if (exe_fd >= 0) m.rs().call(SYS_close, (uint64_t)exe_fd);
  if (r < 0) throw_errno("in the restored task: prctl(PR_SET_MM_MAP)", (int)-r);
}

// What each thread registers with the kernel for itself, run as remote syscalls in that thread.
void restore_thread_state(Morph& m, RemoteSyscalls& rs, const ThreadState& th) {
  if (!(th.altstack_flags & SS_DISABLE) && th.altstack_size > 0) {
    struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss{th.altstack_sp, 0, 0, th.altstack_size};
    rs.must("sigaltstack", SYS_sigaltstack, m.put(0, &ss, sizeof ss), 0);
  }
  if (th.robust_head) rs.must("set_robust_list", SYS_set_robust_list, th.robust_head, th.robust_len);
  rs.call(SYS_set_tid_address, th.clear_child_tid);
  if (th.has_rseq) rs.must("rseq registration", SYS_rseq, th.rseq_ptr, th.rseq_size, 0, th.rseq_sig);
}

// Re-creates one saved thread: a remote clone3 in the main thread, with the saved TID (glibc keeps each
// thread's TID in its TLS, so a new TID would break pthread_kill and robust mutexes). The new thread
// starts stopped (PTRACE_O_TRACECLONE) and gets its own registrations and registers.
std::unique_ptr<SeizedTask> create_thread(Morph& m, const ThreadState& th, uint64_t gadget, PidPlacement& pids) {
  constexpr uint64_t kFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  pid_t tid = pids.clone_with_id(m.rs(), m.scratch() + 3072, kFlags, th.tid, "thread " + std::to_string(th.tid), "ETIDTAKEN");
  auto t = std::make_unique<SeizedTask>(tid, SeizedTask::Adopt{});
  RemoteSyscalls trs(*t, gadget);
  restore_thread_state(m, trs, th);
  return t;
}

void release_thread(SeizedTask& task, const ThreadState& th) {
  task.set_xsave(th.xsave);
  user_regs_struct regs;
  memcpy(&regs, th.regs.data(), sizeof regs);
  regs.orig_rax = (unsigned long long)-1;  // no syscall restart on the way out: the image has done it
  task.release_with(regs, th.sigmask);
}

void restore_task_state(Morph& m, const TaskImage& img) {
  auto& rs = m.rs();
  rs.must("chdir " + img.cwd, SYS_chdir, m.put_string(0, img.cwd));
  rs.call(SYS_umask, img.umask);
  rs.call(SYS_prctl, PR_SET_NAME, m.put_string(0, img.comm.substr(0, 15)));
  restore_mm(m, img);
  // Every signal gets the saved disposition, or SIG_DFL: the stub inherited whatever the restorer
  // ignored (Node ignores SIGPIPE), which the saved task never had.
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction ka{0, 0, 0, 0};
    for (const SigAction& sa : img.sigactions)
      if (sa.signo == sig) ka = KernelSigaction{sa.handler, sa.flags, sa.restorer, sa.mask};
    long r = rs.call(SYS_rt_sigaction, sig, m.put(0, &ka, sizeof ka), 0, 8);
    if (r < 0 && ka.handler != 0) throw_errno("in the restored task: rt_sigaction " + std::to_string(sig), (int)-r);
  }
  restore_thread_state(m, rs, img.main);
}

// A child's own uid and gid (its parent's stub may be root, the child ran as nobody): without
// supplementary groups, as the root's stub is started.
void restore_creds(RemoteSyscalls& rs, const Creds& c) {
  rs.call(SYS_setgroups, 0, 0);  // only root may, and only root has groups to drop here
  long r = rs.call(SYS_setresgid, c.gid, c.egid, c.sgid);
  if (r < 0) throw_errno("in the restored task: setresgid(" + std::to_string(c.gid) + ")", (int)-r);
  rs.call(SYS_setfsgid, c.fsgid);
  r = rs.call(SYS_setresuid, c.uid, c.euid, c.suid);
  if (r < 0) throw_errno("in the restored task: setresuid(" + std::to_string(c.uid) + ")", (int)-r);
  rs.call(SYS_setfsuid, c.fsuid);
  rs.call(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0);  // as the task was, exec'd by its user (a uid change clears it)
}

}  // namespace

void check_is_stub(int pid) {
  std::string exe;
  try {
    exe = read_link("/proc/" + std::to_string(pid) + "/exe");
  } catch (const CoreError&) {
    throw CoreError("ESRCH", "no stub process " + std::to_string(pid));
  }
  if (exe.size() < 12 || exe.compare(exe.size() - 12, 12, "cryopod-stub") != 0)
    throw CoreError("EPERM", "pid " + std::to_string(pid) + " runs " + exe + ", not the cryopod restore stub");
  if (read_status(pid).threads != 1) throw CoreError("EPERM", "pid " + std::to_string(pid) + " is not a waiting stub");
}

std::unique_ptr<StubProcess> start_stub_for(const TaskImage& root, bool need_id, const std::string& stub_path, long uid,
                                            long gid, const std::vector<int>& pass_fds) {
  if (root.own_pid_ns && root.pid == 1)
    return std::make_unique<StubProcess>(stub_path, uid, gid, 0, false, /*new_pid_ns=*/true, pass_fds);
  if (root.own_pid_ns && need_id)
    throw CoreError("EPIDNS", "the checkpoint was taken inside a PID namespace whose init it did not include (its root "
                              "was PID " + std::to_string(root.pid) + " there): a process tree or a multi-threaded "
                              "process is restored only with its namespace's init");
  return std::make_unique<StubProcess>(stub_path, uid, gid, root.own_pid_ns ? 0 : root.pid, need_id, false, pass_fds);
}

std::unique_ptr<StubProcess> adopt_stub_for(const TaskImage& root, bool need_id, int stub_pid) {
  check_is_stub(stub_pid);
  if (need_id) {
    std::vector<int> ids = read_status(stub_pid).ns_pid;
    int seen = ids.empty() ? stub_pid : ids.back();
    if (seen != root.pid)
      throw CoreError("EPIDTAKEN", "the restore stub is PID " + std::to_string(seen) + " in its PID namespace, the "
                                   "checkpointed process was " + std::to_string(root.pid) + ": a process tree or a "
                                   "multi-threaded process is restored only with its own PIDs");
  }
  return std::make_unique<StubProcess>((pid_t)stub_pid);
}

int spare_id(const std::vector<const TaskImage*>& tasks) {
  int top = 1;
  for (const TaskImage* t : tasks) {
    top = std::max(top, t->pid);
    for (const ThreadState& th : t->threads) top = std::max(top, th.tid);
  }
  return top + 1;
}

void validate_image(const TaskImage& img) {
  std::vector<const ThreadState*> all{&img.main};
  for (const ThreadState& th : img.threads) all.push_back(&th);
  for (const ThreadState* th : all) {
    if (th->regs.size() != sizeof(user_regs_struct))
      throw CoreError("EIMAGE", "thread " + std::to_string(th->tid) + ": registers are " + std::to_string(th->regs.size()) +
                                    " bytes, expected " + std::to_string(sizeof(user_regs_struct)));
    if (th->xsave.size() < 576) throw CoreError("EIMAGE", "thread " + std::to_string(th->tid) + ": XSAVE area too small");
  }
  check_memory_layout(img);  // image_checks.h: VMAs, dumped and inherited runs, on ranges
}


MorphedTask morph_rest(MorphContext& c, const TaskImage& img, RestoreScope& files) {
  Morph& m = *c.morph;
  MorphedTask out;
  out.gadget = c.rs->gadget();
  // Threads first and the task's own state (PR_SET_MM_MAP's exe) while the stub may still have more
  // rights than the task (clone3 set_tid needs CAP_CHECKPOINT_RESTORE); then its credentials, on every
  // thread (a raw setresuid changes one); then its files, opened and bound with its own rights.
  if (!img.threads.empty() && !c.pids) throw CoreError("EINVAL", "no PID placement for the threads");
  for (const ThreadState& th : img.threads) out.threads.push_back(create_thread(m, th, c.rs->gadget(), *c.pids));
  restore_task_state(m, img);
  if (c.creds) {
    restore_creds(m.rs(), *c.creds);
    for (auto& th : out.threads) {
      RemoteSyscalls trs(*th, out.gadget);
      restore_creds(trs, *c.creds);
    }
  }
  restore_files(m, img, files);
  restore_process_state(m, img, out.threads, c.rs->gadget());
  c.rs->must("munmap scratch", SYS_munmap, c.scratch, kScratchSize);
  return out;
}

void release_morphed(SeizedTask& task, const TaskImage& img, MorphedTask& morphed) {
  for (size_t i = 0; i < morphed.threads.size(); ++i) release_thread(*morphed.threads[i], img.threads[i]);
  release_thread(task, img.main);
}

int restore_task(const TaskImage& img, const RestoreRequest& req) {
  validate_image(img);
  for (const OpenFile& f : img.files)
    if (f.kind == "pipe" && !is_external(f))
      throw CoreError("EIMAGE", "a single-task image with a pipe: pipes are restored with their process tree");
  // A multi-threaded task needs its PID and TIDs back (glibc caches them); a single-threaded one takes
  // a new PID when its own is in use.
  bool need_id = !img.threads.empty();
  std::vector<int> pass_fds;
  RestoreScope files = plan_inherit({&img}, req.inherit, req.stub_pid > 0, pass_fds);
  std::unique_ptr<StubProcess> stub = req.stub_pid > 0 ? adopt_stub_for(img, need_id, req.stub_pid)
                                                       : start_stub_for(img, need_id, req.stub_path, req.uid, req.gid, pass_fds);
  // EXITKILL: a restorer that dies mid-morph takes the half-built stub with it, rather than let it run
  // on a half-restored address space (a restore pod's container then exits and is restarted).
  SeizedTask task(stub->pid(), PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL);
  PidPlacement pids(stub->pid(), spare_id({&img}));
  phase(req.phase_fd, "seize");
  MorphContext c;
  c.pids = &pids;
  c.lazy = req.lazy;
  morph_memory(c, task, img, req.pages_path, req.verify, /*inherit=*/false);
  phase(req.phase_fd, "memory");
  MorphedTask morphed = morph_rest(c, img, files);
  pids.finish();
  phase(req.phase_fd, "release");
  release_morphed(task, img, morphed);
  stub->release();
  // It runs: the prefetcher starts making the rest resident (lazy_pager.h).
  if (req.lazy && req.lazy->pager) req.lazy->pager->released();
  return stub->pid();
}
}  // namespace cryopod
