#include "parasite.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <chrono>
#include <cstring>

#include "../../parasite/protocol.h"
#include "errors.h"
#include "phase.h"
#include "page_bitmap.h"
#include "proc.h"

namespace cryopod {

namespace {

constexpr int kReplyTimeoutMs = 30000;  // no progress for this long: the parasite is stuck
constexpr int kFiniTimeoutMs = 1000;    // an idle blob answers FINI in microseconds

size_t pipe_capacity() {
  size_t max = 1 << 20;
  try {
    max = std::stoul(read_text("/proc/sys/fs/pipe-max-size"));
  } catch (...) {
  }
  return std::min<size_t>(max, 1 << 20);
}

std::string who(pid_t pid) { return "pid " + std::to_string(pid); }

}  // namespace

std::vector<PageSegment> split_into_segments(const std::vector<PageRun>& runs, uint64_t seg_bytes) {
  std::vector<PageSegment> segs;
  segs.emplace_back();
  for (const PageRun& r : runs) {
    uint64_t addr = r.vaddr, left = r.nr_pages * kPageSize;
    while (left > 0) {
      if (segs.back().bytes == seg_bytes) segs.emplace_back();
      uint64_t take = std::min(left, seg_bytes - segs.back().bytes);
      segs.back().iovs.push_back({addr, take});
      segs.back().bytes += take;
      addr += take;
      left -= take;
    }
  }
  if (segs.back().bytes == 0) segs.pop_back();
  return segs;
}

Parasite::Parasite(SeizedTask& task, RemoteSyscalls& rs, const std::string& blob_path, unsigned nr_pipes, int phase_fd)
    : task_(task), rs_(rs), phase_fd_(phase_fd), vdso_gadget_(rs.gadget()) {
  static_assert(Parasite::kScratchOff == PARASITE_SCRATCH_OFF, "scratch page offset");
  static_assert(PARASITE_ARGS_OFF + sizeof(parasite_args) <= PARASITE_SCRATCH_OFF, "args overlap the scratch page");
  static_assert(PARASITE_RESCUE_OFF + sizeof(parasite_rescue) <= PARASITE_CHILD_STACK_TOP - 64 * 1024, "rescue record overlaps the stacks");
  std::vector<uint8_t> blob = read_binary(blob_path);
  if (blob.empty() || blob.size() > PARASITE_ARGS_OFF)
    throw CoreError("EINVAL", "parasite blob " + blob_path + " has a bad size " + std::to_string(blob.size()));
  if (blob.size() < PARASITE_GADGET_OFF + 2 || blob[PARASITE_GADGET_OFF] != 0x0f || blob[PARASITE_GADGET_OFF + 1] != 0x05)
    throw CoreError("EINVAL", "parasite blob " + blob_path + " has no syscall gadget at its offset " + std::to_string(PARASITE_GADGET_OFF));
  nr_pipes = std::max(1u, std::min<unsigned>(nr_pipes, PARASITE_MAX_PIPES));
  xsave_ = task_.xsave();  // the blob is built without SSE, but a cure must put back exactly what was there
  fds_before_ = list_fds(task_.pid());
  try {
    start(blob);
    connect();
  } catch (...) {
    cure();
    throw;
  }
  try {
    // Pipes: the write ends go to the parasite, ours are closed so a dead parasite means EOF.
    pipe_size_ = pipe_capacity();
    std::vector<int> wr;
    for (unsigned i = 0; i < nr_pipes; ++i) {
      int p[2];
      if (pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
      pipe_rd_.push_back(p[0]);
      wr.push_back(p[1]);
      if (fcntl(p[1], F_SETPIPE_SZ, (int)pipe_size_) < 0) pipe_size_ = kPageSize * 16;
      struct stat st {};
      if (fstat(p[0], &st) == 0) record_fd(-1, st.st_ino, 2);  // the blob's copy: any fd of this pipe
    }
    start_blob();
    send(sock_fd_, PARASITE_CMD_INIT, nr_pipes, wr.data(), (unsigned)wr.size());
    for (int fd : wr) close(fd);
    if (receive(sock_fd_, PARASITE_CMD_INIT) != 0) throw CoreError("EPROTO", "parasite refused its pipes");
  } catch (...) {
    cure();
    throw;
  }
}

Parasite::~Parasite() {
  try {
    cure();
  } catch (...) {
    // The SeizedTask destructor still detaches; nothing may escape a destructor.
  }
  if (child_pid_ > 0 && !child_done_) kill(child_pid_, SIGKILL);  // a failed drain: the snapshot goes
  release_local();
}

// The dumper's side: pipes, sockets, its view of the shared area.
void Parasite::release_local() {
  for (int fd : pipe_rd_) close(fd);
  pipe_rd_.clear();
  for (int* fd : {&sock_fd_, &child_sock_, &pidfd_})
    if (*fd >= 0) {
      close(*fd);
      *fd = -1;
    }
  if (local_area_) munmap(local_area_, PARASITE_AREA_SIZE);
  local_area_ = nullptr;
}

// Makes the shared area: the task's memfd, filled (blob, rescue record) and mapped by the dumper, then
// mapped in the task, which is left parked in it.
//
// Until the area is mapped, remote syscalls run on the vDSO park (vdso_park.h; else on the vDSO's own
// `syscall`). Only memfd_create and mmap run there; between them the task holds its own registers (its
// mask stays blocked: a rescuer puts it back from the record in the memfd). The memfd's name goes below
// the stack pointer (dead stack, past the red zone); the dumper sizes and fills the memfd itself.
void Parasite::start(const std::vector<uint8_t>& blob) {
  pid_t pid = task_.pid();
  const char name[] = "cryopod-parasite";
  uint64_t name_at = (task_.original_regs().rsp - 512) & ~15ULL, scratch = 0;
  try {
    remote_write(pid, name_at, name, sizeof name);
  } catch (const CoreError&) {
    scratch = (uint64_t)rs_.must("mmap scratch", SYS_mmap, 0, kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                                 (uint64_t)-1, 0);
    remote_write(pid, scratch, name, sizeof name);
    name_at = scratch;
  }
  long mfd = rs_.call(SYS_memfd_create, name_at, MFD_CLOEXEC);
  if (scratch) rs_.call(SYS_munmap, scratch, kPageSize);
  phase(phase_fd_, "area");
  task_.set_regs(task_.regs_to_put_back());  // off the vDSO's gadget while we fill the memfd
  if (mfd < 0) throw_errno("in " + who(pid) + ": memfd_create", (int)-mfd);
  memfd_in_task_ = (int)mfd;
  std::string fd_path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(mfd);
  int local_fd = open(fd_path.c_str(), O_RDWR | O_CLOEXEC);
  if (local_fd < 0) throw_errno_at("open", fd_path);
  if (ftruncate(local_fd, PARASITE_AREA_SIZE) != 0) {
    int e = errno;
    close(local_fd);
    throw_errno("ftruncate parasite area", e);
  }
  void* local = mmap(nullptr, PARASITE_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, local_fd, 0);
  int map_err = errno;
  close(local_fd);
  if (local == MAP_FAILED) throw_errno("mmap parasite area locally", map_err);
  local_area_ = (uint8_t*)local;
  std::memcpy(local_area_, blob.data(), blob.size());  // the task runs it only on the first send()
  write_rescue_record();
  long area = rs_.call(SYS_mmap, 0, PARASITE_AREA_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, (uint64_t)mfd, 0);
  if (area < 0 && area > -4096) {
    task_.set_regs(task_.regs_to_put_back());
    throw_errno("in " + who(pid) + ": mmap parasite area", (int)-area);
  }
  remote_area_ = (uint64_t)area;
  // At once into the park after the area's gadget, and every remote syscall from here until cure()'s
  // munmap runs there: a dumper that dies leaves the task parked in the blob, which the rescue record
  // undoes; on the vDSO it would run on with our registers.
  user_regs_struct parked = task_.regs();
  parked.rip = remote_area_ + PARASITE_GADGET_OFF + 2;
  task_.set_regs(parked);
  rs_.set_gadget(remote_area_ + PARASITE_GADGET_OFF);
}

// On the area's gadget: the memfd's fd goes, and the control sockets come: socketpairs made by the task
// itself, in its own namespaces, whose far ends the dumper takes out of its fd table (pidfd_getfd,
// allowed to its tracer). No address anywhere: nothing to reach across network namespaces, nothing
// another local user could connect to first.
void Parasite::connect() {
  rs_.call(SYS_close, (uint64_t)memfd_in_task_);
  memfd_in_task_ = -1;
  auto* args = (parasite_args*)(local_area_ + PARASITE_ARGS_OFF);
  args->ctl_fd = take_socket_end(&sock_fd_);
  args->snapshot_fd = take_socket_end(&child_sock_);
  child_sock_ready_ = false;  // the snapshot child's end waits for SNAPSHOT
}

// One remote socketpair(): the task keeps one end (returned), the dumper gets the other in *ours.
int Parasite::take_socket_end(int* ours) {
  pid_t pid = task_.pid();
  auto* args = (parasite_args*)(local_area_ + PARASITE_ARGS_OFF);
  uint64_t out = remote_area_ + PARASITE_ARGS_OFF + offsetof(parasite_args, pair);
  rs_.must("socketpair for the parasite", SYS_socketpair, AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, out);
  int theirs = args->pair[0], mine = args->pair[1];
  if (pidfd_ < 0) pidfd_ = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pidfd_ < 0) throw_errno("pidfd_open " + who(pid));
  *ours = (int)syscall(SYS_pidfd_getfd, pidfd_, mine, 0);  // O_CLOEXEC on our side, by the kernel
  int err = errno;
  rs_.call(SYS_close, (uint64_t)mine);
  if (*ours < 0) {
    rs_.call(SYS_close, (uint64_t)theirs);
    throw_errno("pidfd_getfd the parasite's socket from " + who(pid), err);
  }
  try {
    std::string link = read_link("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(theirs));
    if (link.rfind("socket:[", 0) == 0) record_fd(theirs, std::stoull(link.substr(8)), 1);
  } catch (...) {
  }
  return theirs;
}

// The task as the dumper seized it, in the area: a rescuer needs nothing from a dumper that died.
void Parasite::write_rescue_record() {
  auto* r = (parasite_rescue*)(local_area_ + PARASITE_RESCUE_OFF);
  const user_regs_struct& regs = task_.original_regs();
  static_assert(sizeof regs == sizeof r->regs, "user_regs_struct layout");
  std::memcpy(r->regs, &regs, sizeof regs);
  r->sigmask = task_.original_sigmask();
  r->pid = task_.pid();
  if (xsave_.size() > sizeof r->xsave) throw CoreError("EINVAL", "XSAVE area larger than the rescue record holds");
  std::memcpy(r->xsave, xsave_.data(), xsave_.size());
  r->xsave_len = (uint32_t)xsave_.size();
  __atomic_store_n(&r->magic, PARASITE_RESCUE_MAGIC, __ATOMIC_RELEASE);  // last: the record is whole
}

void Parasite::record_threads(const std::vector<std::unique_ptr<SeizedTask>>& others) {
  threads_.clear();
  for (const auto& th : others) threads_.push_back(th.get());
  threads_recorded_ = false;
  if (!local_area_ || others.size() > PARASITE_RESCUE_MAX_THREADS) return;
  auto* r = (parasite_rescue*)(local_area_ + PARASITE_RESCUE_OFF);
  for (size_t i = 0; i < others.size(); ++i) {
    parasite_rescue_thread& slot = r->threads[i];
    slot.tid = others[i]->pid();
    slot.sigmask = others[i]->original_sigmask();
    std::memcpy(slot.regs, &others[i]->original_regs(), sizeof slot.regs);
  }
  __atomic_store_n(&r->nr_threads, (uint32_t)others.size(), __ATOMIC_RELEASE);  // after the slots
  threads_recorded_ = true;
}

uint64_t Parasite::thread_gadget() const {
  return threads_recorded_ && remote_area_ ? remote_area_ + PARASITE_GADGET_OFF : vdso_gadget_;
}

// kind 1: a socket at fd_in_task; kind 2: a pipe, at whatever fd the blob got it.
void Parasite::record_fd(int fd_in_task, uint64_t ino, uint32_t kind) {
  if (!local_area_) return;
  auto* r = (parasite_rescue*)(local_area_ + PARASITE_RESCUE_OFF);
  if (r->nr_fds >= PARASITE_RESCUE_MAX_FDS) return;
  r->fds[r->nr_fds] = parasite_rescue_fd{fd_in_task, kind, ino};
  ++r->nr_fds;
}

void Parasite::wait_readable(int fd, const char* what, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r > 0) return;
    if (r < 0 && errno != EINTR) throw_errno(std::string("poll (") + what + ")");
    int sig = 0;
    if (child_sock_ready_ && fd != sock_fd_) {
      // Draining the snapshot child: the task runs on, untraced; the child must be alive.
      std::string st;
      try {
        st = read_text("/proc/" + std::to_string(child_pid_) + "/stat");
      } catch (...) {
      }
      auto rp = st.rfind(')');
      if (rp == std::string::npos || rp + 2 >= st.size() || st[rp + 2] == 'Z')
        throw CoreError("EPARASITE", "the snapshot child " + std::to_string(child_pid_) + " died while the dumper waited for " + what);
    } else if (task_.poll_stop(&sig))
      throw CoreError("EPARASITE", "the parasite in " + who(task_.pid()) + " stopped with signal " +
                                       std::to_string(sig) + " while the dumper waited for " + what);
    if (std::chrono::steady_clock::now() > deadline)
      throw CoreError("ETIMEDOUT", std::string("the parasite did not answer (") + what + ")");
  }
}

// Starts the blob on its stack with the args; its first reply (to INIT) shows that it runs.
void Parasite::start_blob() {
  user_regs_struct r = task_.original_regs();
  r.rip = remote_area_;
  r.rsp = remote_area_ + PARASITE_AREA_SIZE - 64;
  r.rdi = remote_area_ + PARASITE_ARGS_OFF;
  r.orig_rax = (unsigned long long)-1;
  task_.set_regs(r);
  task_.resume();
}

void Parasite::send(int sock, uint32_t cmd, uint32_t nr, const int* fds, unsigned nfds) {
  parasite_msg m{cmd, nr, 0};
  iovec iov{&m, sizeof m};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * PARASITE_MAX_PIPES)];
  if (nfds > 0) {
    h.msg_control = control;
    h.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
  }
  if (sendmsg(sock, &h, MSG_NOSIGNAL) != (ssize_t)sizeof m) throw_errno("send parasite command");
}

int64_t Parasite::receive(int sock, uint32_t cmd, int timeout_ms) {
  wait_readable(sock, "a reply", timeout_ms);
  parasite_msg m{};
  ssize_t n = recv(sock, &m, sizeof m, 0);
  if (n != (ssize_t)sizeof m) throw CoreError("EPROTO", "short reply from the parasite");
  if (m.cmd != cmd) throw CoreError("EPROTO", "parasite replied to command " + std::to_string(m.cmd));
  return m.value;
}

long Parasite::getpid() {
  send(sock_fd_, PARASITE_CMD_GETPID, 0);
  return (long)receive(sock_fd_, PARASITE_CMD_GETPID);
}

// fork() in the task returned the child's ID in the task's PID namespace; /proc and kill() here need
// ours. The child is the parasite thread's: its children file lists them by our IDs.
int Parasite::host_pid_of_child(int ns_pid) {
  pid_t pid = task_.pid();
  std::string list = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  size_t at = 0;
  while (at < list.size()) {
    size_t end = list.find(' ', at);
    if (end == std::string::npos) end = list.size();
    std::string word = list.substr(at, end - at);
    at = end + 1;
    if (word.empty() || word == "\n") continue;
    int host = std::stoi(word);
    try {
      std::vector<int> ids = read_status(host).ns_pid;
      if (!ids.empty() && ids.back() == ns_pid) return host;
    } catch (const CoreError&) {
    }
  }
  throw CoreError("EPARASITE", "the snapshot child " + std::to_string(ns_pid) + " of " + who(pid) + " is not among its children");
}

int Parasite::fork_snapshot() {
  send(sock_fd_, PARASITE_CMD_SNAPSHOT, 0);
  int64_t child = receive(sock_fd_, PARASITE_CMD_SNAPSHOT);
  if (child <= 0) throw_errno("in " + who(task_.pid()) + ": parasite fork", child < 0 ? (int)-child : EIO);
  child_ns_pid_ = (int)child;
  child_pid_ = host_pid_of_child(child_ns_pid_);
  child_sock_ready_ = true;
  auto* rec = (parasite_rescue*)(local_area_ + PARASITE_RESCUE_OFF);
  rec->child_ns_pid = child_ns_pid_;
  rec->child_start = read_stat(child_pid_).starttime;
  __atomic_store_n(&rec->child_pid, child_pid_, __ATOMIC_RELEASE);  // the child inherited the task's end of this pair and serves on it now
  // Its first word: it has copied the pipes out of the blob's data, which the parent clears on FINI.
  if (receive(child_sock_, PARASITE_CMD_SNAPSHOT) != 0) throw CoreError("EPROTO", "the snapshot child did not start");
  return child_pid_;
}

void Parasite::finish_snapshot() {
  if (!child_sock_ready_ || child_done_) return;
  send(child_sock_, PARASITE_CMD_FINI, 0);
  receive(child_sock_, PARASITE_CMD_FINI);
  child_done_ = true;
}

uint64_t Parasite::snapshot_private_bytes() const {
  if (child_pid_ <= 0) return 0;
  uint64_t kib = 0;
  try {
    std::string text = read_text("/proc/" + std::to_string(child_pid_) + "/smaps_rollup");
    for (const char* key : {"Private_Clean:", "Private_Dirty:"}) {
      auto at = text.find(key);
      if (at != std::string::npos) kib += std::stoull(text.substr(at + std::strlen(key)));
    }
  } catch (...) {
  }
  return kib * 1024;
}

uint64_t Parasite::dump_pages(const std::vector<PageRun>& runs, int out_fd) {
  try {
    return drain(runs, out_fd);
  } catch (...) {
    broken_ = true;
    throw;
  }
}

uint64_t Parasite::drain(const std::vector<PageRun>& runs, int out_fd) {
  std::vector<PageSegment> segs = split_into_segments(runs, pipe_size_);
  auto* args = (parasite_args*)(local_area_ + PARASITE_ARGS_OFF);
  // A file sink copies every page (tmpfs, page cache): the parasite then warms each segment for that
  // copy, one segment ahead (see warm() in parasite.c). /dev/null or a pipe: all pipes, no warming.
  struct stat st {};
  bool copies = fstat(out_fd, &st) == 0 && S_ISREG(st.st_mode);
  uint32_t used = copies ? std::min<uint32_t>(2, (uint32_t)pipe_rd_.size()) : (uint32_t)pipe_rd_.size();
  args->pipes_used = used;
  args->warm = copies ? 1 : 0;
  uint64_t total = 0;
  size_t next = 0;
  while (next < segs.size()) {
    // One batch: as many segments as the args area holds.
    uint32_t nseg = 0, niov = 0;
    uint64_t batch_bytes = 0;
    while (next + nseg < segs.size() && nseg < PARASITE_MAX_SEGS &&
           niov + segs[next + nseg].iovs.size() <= PARASITE_MAX_IOVS) {
      const PageSegment& s = segs[next + nseg];
      args->segs[nseg] = parasite_seg{niov, (uint32_t)s.iovs.size(), s.bytes};
      for (const auto& [base, len] : s.iovs) args->iovs[niov++] = parasite_iov{base, len};
      batch_bytes += s.bytes;
      ++nseg;
    }
    args->nr_iovs = niov;
    args->nr_segs = nseg;
    send(page_socket(), PARASITE_CMD_DUMP_PAGES, nseg);
    for (uint32_t i = 0; i < nseg; ++i) {
      int rd = pipe_rd_[i % used];
      uint64_t left = segs[next + i].bytes;
      while (left > 0) {
        ssize_t n = splice(rd, nullptr, out_fd, nullptr, left, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          left -= (uint64_t)n;
          continue;
        }
        if (n == 0) throw CoreError("EPIPE", "the parasite closed its pipe mid-segment");
        if (errno == EAGAIN) {
          wait_readable(rd, "pages", kReplyTimeoutMs);
          continue;
        }
        if (errno != EINTR) throw_errno("splice pages image");
      }
    }
    int64_t done = receive(page_socket(), PARASITE_CMD_DUMP_PAGES);
    if (done < 0) throw_errno("in " + who(task_.pid()) + ": parasite vmsplice", (int)-done);
    if ((uint64_t)done != batch_bytes)
      throw CoreError("EIO", "parasite moved " + std::to_string(done) + " of " + std::to_string(batch_bytes) + " bytes");
    total += batch_bytes;
    next += nseg;
  }
  return total;
}

void Parasite::stop() {
  if (stopped_) return;
  stopped_ = true;
  pid_t pid = task_.pid();
  // 1. Stop the blob: FINI (it closes what it holds, replies and parks), then PTRACE_INTERRUPT its
  // park; at once when a page batch failed (the blob may sit in a vmsplice into a pipe nobody drains
  // any more: the disk filled up) or it does not answer.
  if (task_.running()) {
    if (sock_fd_ >= 0 && !broken_) {
      try {
        send(sock_fd_, PARASITE_CMD_FINI, 0);
        receive(sock_fd_, PARASITE_CMD_FINI, kFiniTimeoutMs);
      } catch (const CoreError&) {
      }
    }
    task_.interrupt();
  }
  if (sock_fd_ >= 0) close(sock_fd_);
  sock_fd_ = -1;
  // 2. Every fd the blob or we left in the task (remote syscalls on the area's gadget, once it is there).
  std::vector<int> now = list_fds(pid);
  for (int fd : now)
    if (!std::binary_search(fds_before_.begin(), fds_before_.end(), fd)) rs_.call(SYS_close, (uint64_t)fd);
}

void Parasite::cure() {
  if (cured_) return;
  stop();
  cured_ = true;
  if (child_pid_ < 0) release_local();
  // 3. The other threads' own registers and masks back first (they may have run remote syscalls on the
  // area's gadget, and would fault on its address once it is gone); then the shared area, by the last
  // remote syscall on the gadget we started with, the vDSO park (ours goes with the area).
  for (SeizedTask* th : threads_) th->put_back();
  rs_.set_gadget(vdso_gadget_);
  if (remote_area_) rs_.must("munmap parasite area", SYS_munmap, remote_area_, PARASITE_AREA_SIZE);
  if (remote_area_) phase(phase_fd_, "unmap");
  remote_area_ = 0;
  // 4. At once the registers and signal mask (which the SeizedTask would put back on detach), then the
  // FPU state exactly as it was: a dumper that dies from here on leaves the task stopped with its own
  // state, which ptrace's detach at exit resumes, not on the vDSO gadget with our registers.
  task_.put_back();
  if (!xsave_.empty()) task_.set_xsave(xsave_);
}

}  // namespace cryopod
