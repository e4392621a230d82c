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
#include "proc.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "stub_process.h"
#include "vmas.h"

namespace cryopod {

constexpr uint64_t kScratchSize = 64 * 1024;

// The state of one restore: the task, its remote syscalls and a scratch page for arguments.
class Morph {
 public:
  Morph(SeizedTask& task, RemoteSyscalls& rs) : task_(task), rs_(rs) {}

  void set_scratch(uint64_t addr) { scratch_ = addr; }
  uint64_t scratch() const { return scratch_; }

  // Puts bytes at scratch+off in the task and returns their remote address.
  uint64_t put(uint64_t off, const void* data, size_t len) {
    if (off + len > kScratchSize) throw CoreError("E2BIG", "scratch area overflow");
    remote_write(task_.pid(), scratch_ + off, data, len);
    return scratch_ + off;
  }
  uint64_t put_string(uint64_t off, const std::string& s) { return put(off, s.c_str(), s.size() + 1); }

  SeizedTask& task() { return task_; }
  RemoteSyscalls& rs() { return rs_; }

 private:
  SeizedTask& task_;
  RemoteSyscalls& rs_;
  uint64_t scratch_ = 0;
};

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

bool overlaps(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return a < d && c < b; }

// A free range of `len` bytes that overlaps none of `taken`.
uint64_t find_free_range(uint64_t len, const std::vector<std::pair<uint64_t, uint64_t>>& taken) {
  for (uint64_t cand = 0x10000000ULL; cand < 0x7f0000000000ULL; cand += 0x40000000ULL) {
    bool ok = true;
    for (const auto& t : taken)
      if (overlaps(cand, cand + len, t.first, t.second)) ok = false;
    if (ok) return cand;
  }
  throw CoreError("ENOMEM", "no free address range for " + std::to_string(len) + " bytes");
}


// Moves the stub's [vvar], [vvar_vclock] and [vdso] to the saved addresses, through a free area first
// so a target that overlaps the current place is never clobbered. Returns the gadget's new address.
uint64_t move_vdso(RemoteSyscalls& rs, const std::vector<Vma>& stub_vmas, const TaskImage& img, uint64_t gadget) {
  std::map<std::string, const Vma*> now, want;
  for (const Vma& v : stub_vmas)
    if (v.kind == VmaKind::Vdso || v.kind == VmaKind::Vvar) now[v.name] = &v;
  for (const Vma& v : img.vmas)
    if (v.kind == VmaKind::Vdso || v.kind == VmaKind::Vvar) want[v.name] = &v;
  if (now.size() != want.size())
    throw CoreError("EVDSO", "the saved vDSO area has " + std::to_string(want.size()) + " parts, this kernel's has " +
                                 std::to_string(now.size()) + ": images from another kernel are not supported yet");
  const Vma* vdso_now = now.count("[vdso]") ? now["[vdso]"] : nullptr;
  const Vma* vdso_want = want.count("[vdso]") ? want["[vdso]"] : nullptr;
  if (!vdso_now || !vdso_want) throw CoreError("EVDSO", "no [vdso] in the image or in the stub");
  for (auto& [name, v] : now) {
    if (!want.count(name) || want[name]->length() != v->length())
      throw CoreError("EVDSO", name + " differs in size from this kernel's: images from another kernel are not supported yet");
    // The vDSO code finds vvar at fixed offsets: the saved layout must be this kernel's.
    if ((int64_t)(want[name]->start - vdso_want->start) != (int64_t)(v->start - vdso_now->start))
      throw CoreError("EVDSO", "the saved vDSO layout differs from this kernel's");
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto& [name, v] : now) {
    lo = std::min(lo, v->start);
    hi = std::max(hi, v->end);
  }
  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const Vma& v : img.vmas) taken.push_back({v.start, v.end});
  for (const Vma& v : stub_vmas) taken.push_back({v.start, v.end});
  uint64_t tmp = find_free_range(hi - lo, taken);
  uint64_t off = gadget - vdso_now->start;

  auto move_all = [&](auto target_of) {
    // The vDSO itself goes last: the gadget we run mremap from lives in it.
    std::vector<const Vma*> order;
    for (auto& [name, v] : now)
      if (name != "[vdso]") order.push_back(v);
    order.push_back(vdso_now);
    for (const Vma* v : order) {
      uint64_t to = target_of(v);
      rs.must("mremap " + v->name, SYS_mremap, v->start, v->length(), v->length(), MREMAP_MAYMOVE | MREMAP_FIXED, to);
    }
  };
  std::map<std::string, uint64_t> at_tmp;
  move_all([&](const Vma* v) { return at_tmp[v->name] = tmp + (v->start - lo); });
  rs.set_gadget(at_tmp["[vdso]"] + off);
  std::vector<Vma> moved;
  for (auto& [name, v] : now) {
    Vma m = *v;
    m.start = at_tmp[name];
    m.end = m.start + v->length();
    moved.push_back(m);
  }
  now.clear();
  for (const Vma& m : moved) now[m.name] = &m;
  vdso_now = now["[vdso]"];
  move_all([&](const Vma* v) { return want[v->name]->start; });
  return vdso_want->start + off;
}

// A mapping the task inherited from its restored parent that is the image's very VMA: kept, so the
// pages it shares with the parent (copy-on-write, or shared memory) stay shared.
bool same_vma(const Vma& now, const Vma& want) {
  if (now.start != want.start || now.end != want.end || now.kind != want.kind) return false;
  switch (want.kind) {
    case VmaKind::Anon: return true;
    case VmaKind::FilePrivate:
    case VmaKind::FileShared: return now.path == want.path && now.pgoff == want.pgoff;
    case VmaKind::Shmem: return now.pgoff == want.pgoff;  // the parent's object: the shmid is the parent's new one
    default: return false;
  }
}

// Unmaps what the task must not keep: for a fresh stub, all of it but the vDSO area; for a task forked
// from its restored parent, what is not the image's (returns the image VMAs it keeps).
std::set<uint64_t> clear_address_space(RemoteSyscalls& rs, const std::vector<Vma>& now, const TaskImage& img, bool inherit) {
  std::set<uint64_t> kept;
  for (const Vma& v : now) {
    if (v.is_special()) continue;
    bool keep = false;
    if (inherit)
      for (const Vma& w : img.vmas)
        if (same_vma(v, w)) keep = true;
    if (keep)
      kept.insert(v.start);
    else
      rs.must("munmap " + v.name, SYS_munmap, v.start, v.length());
  }
  return kept;
}

// A SysV segment again: with its key and mode, and its shmid kept (kernel.shm_next_id, set from here in
// the task's IPC namespace, which is ours in local mode), attached at each saved address; removed again
// (IPC_RMID) if it had been, so it goes when its last user detaches.
void map_sysv(Morph& m, const std::vector<const Vma*>& vmas) {
  const Vma& first = *vmas.front();
  long key = std::strtol(first.path.c_str() + 5, nullptr, 16);
  uint64_t shmid = first.shmid & ~kSysvShmidBit;
  int fd = open("/proc/sys/kernel/shm_next_id", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    std::string id = std::to_string(shmid);
    ssize_t w = write(fd, id.data(), id.size());
    (void)w;
    close(fd);
  }
  long id = m.rs().call(SYS_shmget, (uint64_t)key, first.shm_size, IPC_CREAT | IPC_EXCL | (first.sysv_mode & 0777));
  if (id == -EEXIST) {
    // SysV segments outlive their processes: the very segment the dump left behind (same id and size,
    // attached nowhere) is taken back and refilled; one in use is someone's, not ours.
    id = m.rs().call(SYS_shmget, (uint64_t)key, first.shm_size, 0);
    struct shmid_ds ds {};
    bool ours = id >= 0 && (uint64_t)id == shmid && m.rs().call(SYS_shmctl, (uint64_t)id, IPC_STAT, m.scratch() + 8192) == 0;
    if (ours) {
      remote_read(m.task().pid(), m.scratch() + 8192, &ds, sizeof ds);
      ours = ds.shm_nattch == 0 && ds.shm_segsz == first.shm_size;
    }
    if (!ours)
      throw CoreError("EEXIST", "SysV shared memory key " + first.path.substr(5) +
                                    " is in use (is the checkpointed process still running?)");
  }
  if (id < 0) throw_errno("in the restored task: shmget " + first.path, (int)-id);
  if ((uint64_t)id != shmid)
    throw CoreError("ESHMID", "SysV segment " + first.path + " came back as shmid " + std::to_string(id) + ", not " +
                                  std::to_string(shmid));
  for (const Vma* v : vmas) {
    long r = m.rs().call(SYS_shmat, (uint64_t)id, v->start, (v->prot & PROT_WRITE) ? 0 : SHM_RDONLY);
    if (r < 0 && r > -4096) throw_errno("in the restored task: shmat " + v->path, (int)-r);
  }
  if (first.sysv_mode & SHM_DEST) m.rs().call(SYS_shmctl, (uint64_t)id, IPC_RMID, 0);
}

// Creates the shared memory objects this task maps first: a memfd per object (named as saved), or plain
// MAP_SHARED|MAP_ANONYMOUS for a /dev/zero object mapped once from offset 0 (so maps reads the same).
void map_shmem(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  std::map<uint64_t, std::vector<const Vma*>> objects;
  for (const Vma& v : img.vmas)
    if (v.kind == VmaKind::Shmem && !kept.count(v.start)) objects[v.shmid].push_back(&v);
  for (const auto& [shmid, vmas] : objects) {
    const Vma& first = *vmas.front();
    int prot_all = PROT_READ | PROT_WRITE;
    if (first.path.rfind("/SYSV", 0) == 0) {
      map_sysv(m, vmas);
      continue;
    }
    if (vmas.size() == 1 && first.pgoff == 0 && first.path == "/dev/zero") {
      m.rs().must("mmap shared anonymous", SYS_mmap, first.start, first.length(), prot_all | first.prot,
                  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, (uint64_t)-1, 0);
      continue;
    }
    std::string name = first.path.rfind("/memfd:", 0) == 0 ? first.path.substr(7) : "shmem";
    long fd = m.rs().must("memfd_create " + name, SYS_memfd_create, m.put_string(0, name), 0);
    try {
      m.rs().must("ftruncate memfd", SYS_ftruncate, (uint64_t)fd, first.shm_size);
      for (const Vma* v : vmas)
        m.rs().must("mmap memfd " + name, SYS_mmap, v->start, v->length(), prot_all | v->prot, MAP_SHARED | MAP_FIXED,
                    (uint64_t)fd, v->pgoff);
    } catch (...) {
      m.rs().call(SYS_close, (uint64_t)fd);
      throw;
    }
    m.rs().call(SYS_close, (uint64_t)fd);
  }
}

void map_vmas(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  map_shmem(m, img, kept);
  for (const Vma& v : img.vmas) {
    if (v.is_special() || v.kind == VmaKind::Shmem) continue;
    // Pages are written after mapping: private mappings start writable and get their final prot later.
    int prot = v.prot | ((v.kind == VmaKind::FileShared) ? 0 : PROT_READ | PROT_WRITE);
    if (kept.count(v.start)) {
      if (v.kind != VmaKind::FileShared) m.rs().must("mprotect " + v.name, SYS_mprotect, v.start, v.length(), prot);
      continue;
    }
    if (v.kind == VmaKind::Anon) {
      int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (v.flags & MAP_GROWSDOWN);
      m.rs().must("mmap anonymous " + v.name, SYS_mmap, v.start, v.length(), prot, flags, (uint64_t)-1, 0);
      continue;
    }
    int oflags = (v.kind == VmaKind::FileShared && (v.prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
    uint64_t path = m.put_string(0, v.path);
    long fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, path, oflags | O_CLOEXEC, 0);
    if (fd < 0) throw_errno("in the restored task: open " + v.path + " to map it", (int)-fd);
    int flags = (v.kind == VmaKind::FileShared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
    long r = m.rs().call(SYS_mmap, v.start, v.length(), prot, flags, (uint64_t)fd, v.pgoff);
    m.rs().call(SYS_close, (uint64_t)fd);
    if (r < 0 && r > -4096) throw_errno("in the restored task: mmap " + v.path, (int)-r);
  }
}

// In a private VMA kept from the parent, a page that is neither still shared with the parent
// (inherited) nor the task's own (dumped) was empty in the task: drop the parent's copy.
void drop_foreign_pages(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  std::set<uint64_t> present;
  for (const auto* runs : {&img.pages, &img.inherited})
    for (const PageRun& r : *runs)
      for (uint64_t i = 0; i < r.nr_pages; ++i) present.insert(r.vaddr + i * kPageSize);
  for (const Vma& v : img.vmas) {
    if (!kept.count(v.start) || (v.kind != VmaKind::Anon && v.kind != VmaKind::FilePrivate)) continue;
    uint64_t run = 0;
    for (uint64_t a = v.start; a <= v.end; a += kPageSize) {
      bool foreign = a < v.end && !present.count(a);
      if (foreign && !run) run = a;
      if (!foreign && run) {
        m.rs().must("madvise(DONTNEED)", SYS_madvise, run, a - run, MADV_DONTNEED);
        run = 0;
      }
    }
  }
}

void finish_vmas(Morph& m, const TaskImage& img) {
  for (const Vma& v : img.vmas) {
    if (v.is_special()) continue;
    if (v.kind != VmaKind::FileShared)
      m.rs().must("mprotect " + v.name, SYS_mprotect, v.start, v.length(), v.prot);
    for (int advice = 0; advice < 64; ++advice)
      if (v.madv & (1ULL << advice)) m.rs().call(SYS_madvise, v.start, v.length(), advice);
  }
}

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
      std::string path = "/proc/" + std::to_string(src.creator_pid) + "/fd/" + std::to_string(f.pipe_write ? src.write_fd : src.read_fd);
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

// struct clone_args (include/uapi/linux/sched.h)
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

// Re-creates one saved thread: a remote clone3 in the main thread, with the saved TID (set_tid: glibc
// keeps each thread's TID in its TLS, so a new TID would break pthread_kill and robust mutexes). The new
// thread starts stopped (PTRACE_O_TRACECLONE) and gets its own registrations and registers.
std::unique_ptr<SeizedTask> create_thread(Morph& m, const ThreadState& th, uint64_t gadget) {
  uint64_t tid_slot = m.put(3072, &th.tid, sizeof(pid_t));
  CloneArgs ca{};
  ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM;
  ca.set_tid = tid_slot;
  ca.set_tid_size = 1;
  long tid = m.rs().call(SYS_clone3, m.put(3200, &ca, sizeof ca), sizeof ca);
  if (tid == -EEXIST)
    throw CoreError("ETIDTAKEN", "thread " + std::to_string(th.tid) + " cannot be restored: that TID is in use "
                                 "(is the checkpointed process still running?)");
  if (tid < 0) throw_errno("in the restored task: clone3 of thread " + std::to_string(th.tid), (int)-tid);
  auto t = std::make_unique<SeizedTask>((pid_t)tid, SeizedTask::Adopt{});
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

namespace {
// Only a waiting restore stub may be morphed: never an arbitrary process someone names.
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
}  // namespace

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

void morph_memory(MorphContext& c, SeizedTask& task, const TaskImage& img, const std::string& pages_path, bool inherit) {
  std::vector<Vma> now = collect_vmas(task.pid());
  c.rs = std::make_unique<RemoteSyscalls>(task, find_vdso_syscall(task.pid(), now));
  c.morph = std::make_unique<Morph>(task, *c.rs);
  Morph& m = *c.morph;
  RemoteSyscalls& rs = *c.rs;

  std::set<uint64_t> kept = clear_address_space(rs, now, img, inherit);
  rs.set_gadget(move_vdso(rs, now, img, rs.gadget()));

  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const Vma& v : img.vmas) taken.push_back({v.start, v.end});
  uint64_t want = find_free_range(kScratchSize, taken);
  long scratch = rs.must("mmap scratch", SYS_mmap, want, kScratchSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0);
  m.set_scratch((uint64_t)scratch);
  c.scratch = (uint64_t)scratch;

  map_vmas(m, img, kept);
  if (inherit) drop_foreign_pages(m, img, kept);
  fill_pages(task.pid(), img.pages, pages_path);
  finish_vmas(m, img);
}

MorphedTask morph_rest(MorphContext& c, const TaskImage& img, const PipeSources& pipes) {
  Morph& m = *c.morph;
  restore_files(m, img, pipes);
  restore_task_state(m, img);
  MorphedTask out;
  out.gadget = c.rs->gadget();
  for (const ThreadState& th : img.threads) out.threads.push_back(create_thread(m, th, c.rs->gadget()));
  c.rs->must("munmap scratch", SYS_munmap, c.scratch, kScratchSize);
  return out;
}

MorphedTask morph_stub(SeizedTask& task, const TaskImage& img, const std::string& pages_path, const PipeSources& pipes) {
  MorphContext c;
  morph_memory(c, task, img, pages_path, /*inherit=*/false);
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
  if (req.stub_pid > 0) check_is_stub(req.stub_pid);
  StubProcess stub = req.stub_pid > 0 ? StubProcess(req.stub_pid)
                                      : StubProcess(req.stub_path, req.uid, req.gid, img.pid, /*pid_required=*/!img.threads.empty());
  SeizedTask task(stub.pid(), PTRACE_O_TRACECLONE);
  MorphedTask morphed = morph_stub(task, img, req.pages_path, {});
  release_morphed(task, img, morphed);
  stub.release();
  return stub.pid();
}
}  // namespace cryopod
