#include "lazy_pager.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "errors.h"
#include "image_hash.h"
#include "page_bitmap.h"
#include "page_copy.h"
#include "restore_morph.h"

namespace cryopod {

namespace {

// How far below the task the prefetchers run (nice is per thread on Linux). 0: at 1 GiB on this loaded
// machine +10 made "fully resident" later (median ~1.8 s against ~1.5 s) and the first tick no sooner.
// CRYOPOD_LAZY_NICE (benchmarks: the A/B).
int prefetch_nice() {
  const char* e = std::getenv("CRYOPOD_LAZY_NICE");
  return e ? std::atoi(e) : 0;
}

double now_seconds() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

std::string range_of(uint64_t c, uint64_t chunk_bytes, uint64_t size) {
  uint64_t from = c * chunk_bytes, to = std::min(size, from + chunk_bytes);
  return "chunk " + std::to_string(c) + " (bytes " + std::to_string(from) + "-" + std::to_string(to - 1) + ")";
}

}  // namespace

LazyPager::LazyPager(int pid, StubUffd uffd, int image_fd, uint64_t size, std::string path, const std::vector<PageRun>& runs,
                     const PagesDigest& digest, bool prefetch)
    : pid_(pid), image_fd_(image_fd), uffd_(std::move(uffd)), size_(size), chunk_bytes_(digest.chunk_bytes),
      path_(std::move(path)), chunks_(digest.chunks), algo_(digest.algo), prefetch_(prefetch) {
  if (chunk_bytes_ == 0 || chunk_bytes_ % kPageSize != 0) {
    close(image_fd_);
    throw CoreError("EINVAL", path_ + ": lazy restore needs page-multiple chunks, the manifest says " + std::to_string(chunk_bytes_));
  }
  nchunks_ = std::max<uint64_t>(1, (size_ + chunk_bytes_ - 1) / chunk_bytes_);
  // The list is only as good as the root it hashes to: the root is what the manifest's signature covers.
  if (chunks_.size() != nchunks_ * 32 || root_of_chunks(chunks_, algo_) != digest.hex) {
    close(image_fd_);
    throw CoreError("ECHECKSUM", path_ + ": the manifest's chunk digests do not hash to its blake3 " + digest.hex, 0, "verify", path_);
  }
  pidfd_ = (int)syscall(SYS_pidfd_open, pid_, 0);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (pidfd_ < 0 || wake_fd_ < 0) {
    int e = errno;
    if (pidfd_ >= 0) close(pidfd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    close(image_fd_);
    throw_errno("lazy restore: pidfd/eventfd for pid " + std::to_string(pid_), e);
  }
  // Each run cut where the registered ranges begin and end: a piece is wholly in one or wholly outside.
  const auto& ranges = uffd_.ranges();
  uint64_t off = 0;
  for (const PageRun& r : runs) {
    uint64_t a = r.vaddr, end = r.vaddr + r.nr_pages * kPageSize;
    while (a < end) {
      auto it = std::upper_bound(ranges.begin(), ranges.end(), std::make_pair(a, UINT64_MAX));
      bool in = it != ranges.begin() && a < std::prev(it)->second;
      uint64_t stop = in ? std::min(end, std::prev(it)->second) : std::min(end, it == ranges.end() ? end : it->first);
      segments_.push_back(Segment{a, stop - a, off, in});
      off += stop - a;
      a = stop;
    }
  }
  for (size_t i = 0; i < segments_.size(); ++i)
    if (segments_[i].uffd) by_addr_.push_back(i);
  std::sort(by_addr_.begin(), by_addr_.end(), [&](size_t x, size_t y) { return segments_[x].vaddr < segments_[y].vaddr; });
  state_.reset(new std::atomic<uint8_t>[nchunks_]);
  for (uint64_t c = 0; c < nchunks_; ++c) state_[c] = kTodo;
  remaining_ = nchunks_;
  result_.chunks = nchunks_;
}

LazyPager::~LazyPager() {
  bool resident;
  {
    std::lock_guard<std::mutex> lock(mu_);
    resident = finished_ && result_.state == LazyStatus::State::kResident;
  }
  // Never leave the task to fault in zero pages where its data should be.
  if (!resident) syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  stop_threads();
  close(pidfd_);
  close(wake_fd_);
  close(image_fd_);
  for (int fd : child_uffds_) close(fd);
}

void LazyPager::stop_threads() {
  stop_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof one);
  (void)ignored;
  for (std::thread& t : prefetchers_)
    if (t.joinable()) t.join();
  if (fault_thread_.joinable()) fault_thread_.join();
}

void LazyPager::fill_eager_and_serve() {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk_bytes_]);
  for (const Segment& s : segments_) {
    if (s.uffd) continue;
    for (uint64_t c = s.image_off / chunk_bytes_; c * chunk_bytes_ < s.image_off + s.len; ++c) serve_chunk(c, buf.get(), Source::kEager);
    if (stopping()) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ && result_.state == LazyStatus::State::kFailed) throw CoreError(result_.code, result_.message, 0, "verify", path_);
  }
  fault_thread_ = std::thread([this] { fault_loop(); });
}

void LazyPager::released() {
  released_at_ = now_seconds();
  if (!prefetch_) return;
  for (unsigned i = 0; i < fill_threads(); ++i) {
    try {
      prefetchers_.emplace_back([this] { prefetch_loop(); });
    } catch (const std::system_error&) {
      break;  // fewer threads: the faults and the others still get everything in
    }
  }
}

LazyStatus LazyPager::wait() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return finished_; });
  }
  // Every thread is out of its last ioctl before the fd goes (its number could be reused at once).
  stop_threads();
  // Resident (or the task gone): the ranges are unregistered, the task is an ordinary one now.
  uffd_ = StubUffd();
  std::lock_guard<std::mutex> lock(mu_);
  LazyStatus s = result_;
  s.chunks_eager = eager_;
  s.chunks_on_fault = on_fault_;
  s.chunks_prefetched = prefetched_;
  s.faults = faults_;
  s.zero_faults = zero_faults_;
  return s;
}

void LazyPager::abort(const std::string& why) { fail("EABORTED", path_ + ": lazy restore stopped (" + why + ") before pid " + std::to_string(pid_) + " was fully resident; it was killed"); }

// The waiters on the result, and the fault and prefetch threads (which stop).
void LazyPager::wake_everyone() {
  done_cv_.notify_all();
  stop_ = true;
  uint64_t one = 1;
  ssize_t ignored = write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void LazyPager::finish(LazyStatus::State state) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;
    finished_ = true;
    result_.state = state;
    result_.resident_seconds = released_at_ > 0 ? now_seconds() - released_at_ : 0;
  }
  wake_everyone();
}

void LazyPager::fail(const std::string& code, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return;  // resident (or already failed): a late abort must not kill a healthy task
    // The kill comes first: from here no thread of the task returns to user space on a page not there.
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    finished_ = true;
    result_.state = LazyStatus::State::kFailed;
    result_.code = code;
    result_.message = message;
    result_.path = path_;
    result_.resident_seconds = released_at_ > 0 ? now_seconds() - released_at_ : 0;
  }
  wake_everyone();
}

uint8_t LazyPager::serve_chunk(uint64_t c, uint8_t* buf, Source source) {
  uint8_t seen = kTodo;
  if (!state_[c].compare_exchange_strong(seen, kBusy)) return seen;
  uint64_t from = c * chunk_bytes_, len = std::min(size_, from + chunk_bytes_) - from;
  for (uint64_t got = 0; got < len;) {
    ssize_t n = pread(image_fd_, buf + got, len - got, (off_t)(from + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      state_[c] = kFailed;
      int e = errno;
      struct stat st {};
      std::string now = fstat(image_fd_, &st) == 0 ? std::to_string(st.st_size) : "?";
      std::string why = n == 0 ? "the image ends at byte " + now + " (cut short during the lazy restore; it had " + std::to_string(size_) + ")"
                               : std::string("read failed: ") + strerror(e);
      fail(n == 0 ? "EBOUNDS" : "EIO", path_ + ": " + range_of(c, chunk_bytes_, size_) + ": " + why + "; pid " + std::to_string(pid_) + " was killed");
      return kFailed;
    }
    got += (uint64_t)n;
  }
  ChunkHasher h(algo_);
  h.update(buf, len);
  std::string d = h.digest();
  if (d.compare(0, 32, chunks_, c * 32, 32) != 0) {
    state_[c] = kFailed;
    fail("ECHECKSUM", path_ + ": " + range_of(c, chunk_bytes_, size_) + ": blake3 is " + to_hex(d) + ", the manifest says " +
                          to_hex(chunks_.substr(c * 32, 32)) + "; pid " + std::to_string(pid_) + " was killed before it used a byte of it");
    return kFailed;
  }
  // The segments overlapping [from, from + len): found by image offset (segments_ are in image order).
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from, [](uint64_t o, const Segment& s) { return o < s.image_off; });
  if (it != segments_.begin()) --it;
  for (; it != segments_.end() && it->image_off < from + len && !stopping(); ++it) {
    uint64_t a = std::max(from, it->image_off), b = std::min(from + len, it->image_off + it->len);
    if (a < b) copy_out(*it, a - it->image_off, b - a, buf + (a - from), source == Source::kEager);
  }
  if (stopping()) return kFailed;
  state_[c] = kDone;
  (source == Source::kEager ? eager_ : source == Source::kFault ? on_fault_ : prefetched_)++;
  if (--remaining_ == 0) finish(LazyStatus::State::kResident);
  return kTodo;  // served here
}

void LazyPager::copy_out(const Segment& s, uint64_t from, uint64_t len, const uint8_t* src, bool eager) {
  if (s.uffd) {
    uffd_copy(s.vaddr + from, src, len);
    return;
  }
  if (!eager) return;  // unreachable: such chunks are all filled before the task runs
  iovec local{(void*)src, len}, remote{(void*)(s.vaddr + from), len};
  while (local.iov_len > 0) {
    ssize_t n = process_vm_writev(pid_, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      fail("EIO", "process_vm_writev into pid " + std::to_string(pid_) + ": " + strerror(n == 0 ? EIO : errno));
      return;
    }
    local.iov_base = (char*)local.iov_base + n;
    local.iov_len -= (size_t)n;
    remote.iov_base = (char*)remote.iov_base + n;
    remote.iov_len -= (size_t)n;
  }
}

// false: the task is gone (or we stop); the chunk is then abandoned.
bool LazyPager::uffd_copy(uint64_t dst, const uint8_t* src, uint64_t len) {
  while (len > 0 && !stopping()) {
    uffdio_copy c{};
    c.dst = dst;
    c.src = (uint64_t)src;
    c.len = len;
    if (ioctl(uffd_.fd(), UFFDIO_COPY, &c) == 0) return true;
    int err = errno;
    uint64_t done = c.copy > 0 ? (uint64_t)c.copy : 0;
    if (err == EEXIST && done == 0) done = kPageSize;  // that page is there already (a fault raced us): the next
    if (err == ENOENT) return true;  // the task unmapped it (or mapped something else there): nothing to fill
    if (err == ESRCH) {
      finish(LazyStatus::State::kExited);
      return false;
    }
    if (done == 0 && err != EAGAIN) {
      fail("EIO", "UFFDIO_COPY into pid " + std::to_string(pid_) + " at " + std::to_string(dst) + ": " + strerror(err) + "; it was killed");
      return false;
    }
    dst += done;
    src += done;
    len -= done;
  }
  return !stopping();
}

void LazyPager::zero_page(uint64_t addr) {
  zero_faults_++;
  uffdio_zeropage z{};
  z.range.start = addr;
  z.range.len = kPageSize;
  if (ioctl(uffd_.fd(), UFFDIO_ZEROPAGE, &z) == 0) return;
  // EEXIST: the page arrived meanwhile; the faulting thread may still wait on it.
  uffdio_range r{addr, kPageSize};
  ioctl(uffd_.fd(), UFFDIO_WAKE, &r);
}

void LazyPager::on_fault(uint64_t addr, uint8_t* buf) {
  faults_++;
  auto it = std::upper_bound(by_addr_.begin(), by_addr_.end(), addr, [&](uint64_t a, size_t i) { return a < segments_[i].vaddr; });
  const Segment* s = nullptr;
  if (it != by_addr_.begin()) {
    const Segment& cand = segments_[*std::prev(it)];
    if (addr < cand.vaddr + cand.len) s = &cand;
  }
  // A page the image does not hold was never touched before the dump: zero, as it was.
  if (!s) return zero_page(addr);
  uint64_t c = (s->image_off + (addr - s->vaddr)) / chunk_bytes_;
  uint8_t was = serve_chunk(c, buf, Source::kFault);
  // Done before this fault was read: the page arrived meanwhile, or the task discarded it since
  // (MADV_DONTNEED), when zero is what it reads. Busy: the copying thread's UFFDIO_COPY wakes the task.
  if (was == kDone) zero_page(addr);
}

void LazyPager::on_fork(int child_uffd) {
  child_uffds_.push_back(child_uffd);
  // The task first (a fork still under way then fails; fail() below kills it once more, harmlessly), then
  // its process group and the children it has (never our own group: the stub made a session of its
  // own, a container's stub is in the container's).
  syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
  pid_t pgid = getpgid(pid_);
  if (pgid > 1 && pgid != getpgrp()) kill(-pgid, SIGKILL);
  std::string task_dir = "/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children";
  if (FILE* f = fopen(task_dir.c_str(), "r")) {
    for (int child; fscanf(f, "%d", &child) == 1;) kill(child, SIGKILL);
    fclose(f);
  }
  fail("EFORK", path_ + ": pid " + std::to_string(pid_) + " forked before it was fully resident: a lazy restore does not serve a "
                        "child's memory yet (restore it without --lazy); it, its process group and its children were killed");
}

void LazyPager::fault_loop() {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk_bytes_]);
  pollfd fds[3] = {{uffd_.fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}, {pidfd_, POLLIN, 0}};
  while (!stopping()) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      fail("EIO", std::string("lazy restore: poll: ") + strerror(errno));
      break;
    }
    if (fds[1].revents) break;
    uffd_msg msgs[16];
    ssize_t n = read(uffd_.fd(), msgs, sizeof msgs);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      fail("EIO", std::string("lazy restore: reading faults: ") + strerror(errno));
      break;
    }
    for (ssize_t i = 0; i < n / (ssize_t)sizeof(uffd_msg); ++i) {
      if (msgs[i].event == UFFD_EVENT_FORK) on_fork((int)msgs[i].arg.fork.ufd);  // even when stopping: the fd is ours now
      else if (msgs[i].event == UFFD_EVENT_PAGEFAULT && !stopping()) on_fault(msgs[i].arg.pagefault.address & ~(kPageSize - 1), buf.get());
    }
    // The task exited (or was killed by someone else) before it was fully resident.
    if (fds[2].revents && n <= 0) finish(LazyStatus::State::kExited);
  }
}

void LazyPager::prefetch_loop() {
  if (prefetch_nice() > 0) setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), std::min(19, getpriority(PRIO_PROCESS, 0) + prefetch_nice()));
  std::unique_ptr<uint8_t[]> buf(new uint8_t[chunk_bytes_]);
  for (uint64_t c; !stopping() && (c = next_prefetch_.fetch_add(1)) < nchunks_;) serve_chunk(c, buf.get(), Source::kPrefetch);
}

bool start_lazy(Morph& m, const TaskImage& img, const std::string& pages_path, PagesVerification* verify, LazyRequest& req) {
  const PagesDigest* digest = verify ? verify->find(pages_path) : nullptr;
  if (!digest || digest->chunks.empty()) {
    req.eager_reason = "the manifest lists no per-chunk digests of " + pages_path + " (a checkpoint older than manifest v4)";
    return false;
  }
  bool any = false;
  for (const Vma& v : img.vmas)
    if (v.kind == VmaKind::Anon && !v.is_special() && !(v.flags & MAP_SHARED))
      any = any || std::any_of(img.pages.begin(), img.pages.end(), [&](const PageRun& r) { return r.vaddr >= v.start && r.vaddr < v.end; });
  if (!any) {
    req.eager_reason = "no private anonymous memory to serve";
    return false;
  }
  StubUffd uffd = StubUffd::open(m, img.vmas, img.pages, /*serving=*/true);
  if (uffd.fd() < 0) {
    req.eager_reason = "the kernel refused a userfaultfd that also serves the kernel's own accesses (it needs CAP_SYS_PTRACE or "
                       "vm.unprivileged_userfaultfd=1)";
    return false;
  }
  uint64_t need = 0;
  for (const PageRun& r : img.pages) need += r.nr_pages * kPageSize;
  int fd = open_pages_image(pages_path, need);
  req.pager = std::make_unique<LazyPager>(m.task().pid(), std::move(uffd), fd, need, pages_path, img.pages, *digest, req.prefetch);
  // Every chunk is checked against its listed digest before a byte of it is used, and the list against
  // the root (the constructor): the image is verified as far as the restore's promise goes.
  verify->verified(pages_path);
  req.pager->fill_eager_and_serve();
  return true;
}

}  // namespace cryopod
