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
#include "page_bitmap.h"
#include "page_copy.h"
#include "pid_placement.h"
#include "proc.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "stub_process.h"
#include "restore_morph.h"
#include "vmas.h"

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

// Re-creates a listening or bound IPv4/IPv6 socket inside the task (so in its network namespace).
long restore_socket(Morph& m, const OpenFile& f) {
  const InetSocket& s = f.socket;
  auto& rs = m.rs();
  long fd = rs.call(SYS_socket, s.family, s.type, s.protocol);
  if (fd < 0) throw_errno("in the restored task: socket for fd " + std::to_string(f.fd), (int)-fd);
  int one = 1, zero = 0;
  auto setopt = [&](int level, int opt, bool on) {
    rs.must("setsockopt", SYS_setsockopt, (uint64_t)fd, level, opt, m.put(0, on ? &one : &zero, sizeof(int)), sizeof(int));
  };
  setopt(SOL_SOCKET, SO_REUSEADDR, true);  // while binding: old connections of this port may linger
  if (s.reuseport) setopt(SOL_SOCKET, SO_REUSEPORT, true);
  if (s.family == AF_INET6) setopt(IPPROTO_IPV6, IPV6_V6ONLY, s.v6only);
  sockaddr_storage ss{};
  socklen_t len;
  if (s.family == AF_INET) {
    auto* in = (sockaddr_in*)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)s.port);
    if (inet_pton(AF_INET, s.address.c_str(), &in->sin_addr) != 1) throw CoreError("EIMAGE", "bad IPv4 address " + s.address);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = (sockaddr_in6*)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)s.port);
    if (inet_pton(AF_INET6, s.address.c_str(), &in6->sin6_addr) != 1) throw CoreError("EIMAGE", "bad IPv6 address " + s.address);
    len = sizeof(sockaddr_in6);
  }
  long r = rs.call(SYS_bind, (uint64_t)fd, m.put(0, &ss, len), len);
  if (r == -EADDRINUSE)
    throw CoreError("EADDRINUSE", "fd " + std::to_string(f.fd) + ": " + s.address + " port " + std::to_string(s.port) +
                                      " is in use (is the checkpointed process still running?)");
  if (r < 0) throw_errno("in the restored task: bind " + s.address + ":" + std::to_string(s.port), (int)-r);
  if (s.listening) rs.must("listen", SYS_listen, (uint64_t)fd, s.backlog);
  if (!s.reuseaddr) setopt(SOL_SOCKET, SO_REUSEADDR, false);
  return fd;
}

// Moves a freshly opened fd to its saved number with its status flags (O_NONBLOCK, O_ASYNC) and
// close-on-exec.
void place_fd(Morph& m, long fd, const OpenFile& f) {
  if (fd != f.fd) {
    m.rs().must("dup2", SYS_dup2, (uint64_t)fd, f.fd);
    m.rs().call(SYS_close, (uint64_t)fd);
  }
  m.rs().must("fcntl(F_SETFL)", SYS_fcntl, f.fd, F_SETFL, f.flags & (O_NONBLOCK | O_ASYNC));
  if (f.cloexec) m.rs().must("fcntl(F_SETFD)", SYS_fcntl, f.fd, F_SETFD, FD_CLOEXEC);
}

void restore_files(Morph& m, const TaskImage& img, const PipeSources& pipes) {
  std::set<int> keep;
  for (const auto& [id, src] : pipes)
    if (src.creator_pid == m.task().pid()) keep.insert({src.read_fd, src.write_fd});
  for (int fd : list_fds(m.task().pid()))
    if (!keep.count(fd)) m.rs().call(SYS_close, fd);
  for (const OpenFile& f : img.files) {
    if (f.kind == "pipe") {
      // Every holder opens the pipe through its creator's fd: /proc/<creator>/fd/<n> of a pipe opens
      // that very pipe (no reader/writer wait: the creator holds both ends until all are open).
      auto it = pipes.find(f.pipe_id);
      if (it == pipes.end()) throw CoreError("EIMAGE", "fd " + std::to_string(f.fd) + ": pipe " + std::to_string(f.pipe_id) + " has no source");
      const PipeSource& src = it->second;
      std::string path = "/proc/" + std::to_string(src.proc_pid) + "/fd/" + std::to_string(f.pipe_write ? src.write_fd : src.read_fd);
      long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, path), f.pipe_write ? O_WRONLY : O_RDONLY, 0);
      if (fd < 0) throw_errno("in the restored task: open pipe end " + path, (int)-fd);
      place_fd(m, fd, f);
      continue;
    }
    if (f.has_socket) {
      place_fd(m, restore_socket(m, f), f);
      continue;
    }
    int flags = f.flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY);
    if (f.kind == "dir") flags |= O_DIRECTORY;
    uint64_t path = m.put_string(0, f.path);
    long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, path, flags, 0);
    if (fd < 0) throw_errno("in the restored task: reopen fd " + std::to_string(f.fd) + " " + f.path, (int)-fd);
    if (fd != f.fd) {
      m.rs().must("dup2", SYS_dup2, (uint64_t)fd, f.fd);
      m.rs().call(SYS_close, (uint64_t)fd);
    }
    if (f.kind == "reg") m.rs().must("lseek " + f.path, SYS_lseek, f.fd, f.pos, SEEK_SET);
    if (f.cloexec) m.rs().must("fcntl(F_SETFD)", SYS_fcntl, f.fd, F_SETFD, FD_CLOEXEC);
  }
}

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
                                            long gid) {
  if (root.own_pid_ns && root.pid == 1)
    return std::make_unique<StubProcess>(stub_path, uid, gid, 0, false, /*new_pid_ns=*/true);
  if (root.own_pid_ns && need_id)
    throw CoreError("EPIDNS", "the checkpoint was taken inside a PID namespace whose init it did not include (its root "
                              "was PID " + std::to_string(root.pid) + " there): a process tree or a multi-threaded "
                              "process is restored only with its namespace's init");
  return std::make_unique<StubProcess>(stub_path, uid, gid, root.own_pid_ns ? 0 : root.pid, need_id);
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
  uint64_t prev_end = 0;
  for (const Vma& v : img.vmas) {
    if (v.start >= v.end || v.start % kPageSize || v.end % kPageSize)
      throw CoreError("EIMAGE", "VMA " + v.name + " has a bad range");
    if (v.start < prev_end) throw CoreError("EIMAGE", "VMAs overlap or are not sorted");
    prev_end = v.end;
    if ((v.kind == VmaKind::FilePrivate || v.kind == VmaKind::FileShared) && v.path.empty())
      throw CoreError("EIMAGE", "file VMA without a path");
  }
  size_t vi = 0;
  uint64_t last = 0;
  for (const PageRun& r : img.pages) {
    if (r.vaddr % kPageSize || r.nr_pages == 0 || r.vaddr < last)
      throw CoreError("EBOUNDS", "page run at " + std::to_string(r.vaddr) + " is not aligned or not ascending");
    uint64_t end = r.vaddr + r.nr_pages * kPageSize;
    while (vi < img.vmas.size() && img.vmas[vi].end <= r.vaddr) ++vi;
    if (vi == img.vmas.size() || img.vmas[vi].start > r.vaddr || img.vmas[vi].end < end ||
        (img.vmas[vi].kind != VmaKind::Anon && img.vmas[vi].kind != VmaKind::FilePrivate && img.vmas[vi].kind != VmaKind::Shmem))
      throw CoreError("EBOUNDS", "page run at " + std::to_string(r.vaddr) + " is not inside a private or shared-memory VMA");
    last = end;
  }
}


MorphedTask morph_rest(MorphContext& c, const TaskImage& img, const PipeSources& pipes) {
  Morph& m = *c.morph;
  restore_files(m, img, pipes);
  restore_task_state(m, img);
  MorphedTask out;
  out.gadget = c.rs->gadget();
  if (!img.threads.empty() && !c.pids) throw CoreError("EINVAL", "no PID placement for the threads");
  for (const ThreadState& th : img.threads) out.threads.push_back(create_thread(m, th, c.rs->gadget(), *c.pids));
  c.rs->must("munmap scratch", SYS_munmap, c.scratch, kScratchSize);
  return out;
}

MorphedTask morph_stub(SeizedTask& task, const TaskImage& img, const std::string& pages_path, PagesVerification* verify,
                       const PipeSources& pipes, PidPlacement& pids) {
  MorphContext c;
  c.pids = &pids;
  morph_memory(c, task, img, pages_path, verify, /*inherit=*/false);
  return morph_rest(c, img, pipes);
}

void release_morphed(SeizedTask& task, const TaskImage& img, MorphedTask& morphed) {
  for (size_t i = 0; i < morphed.threads.size(); ++i) release_thread(*morphed.threads[i], img.threads[i]);
  release_thread(task, img.main);
}

int restore_task(const TaskImage& img, const RestoreRequest& req) {
  validate_image(img);
  for (const OpenFile& f : img.files)
    if (f.kind == "pipe") throw CoreError("EIMAGE", "a single-task image with a pipe: pipes are restored with their process tree");
  // A multi-threaded task needs its PID and TIDs back (glibc caches them); a single-threaded one takes
  // a new PID when its own is in use.
  bool need_id = !img.threads.empty();
  std::unique_ptr<StubProcess> stub = req.stub_pid > 0 ? adopt_stub_for(img, need_id, req.stub_pid)
                                                       : start_stub_for(img, need_id, req.stub_path, req.uid, req.gid);
  SeizedTask task(stub->pid(), PTRACE_O_TRACECLONE);
  PidPlacement pids(stub->pid(), spare_id({&img}));
  MorphedTask morphed = morph_stub(task, img, req.pages_path, req.verify, {}, pids);
  pids.finish();
  release_morphed(task, img, morphed);
  stub->release();
  return stub->pid();
}
}  // namespace cryopod
