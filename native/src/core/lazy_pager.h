// Lazy restore: the task runs before its private anonymous memory is resident, and the restorer serves
// its pages from the image as it touches them.
//
//   stub's userfaultfd (uffd_fill.h, serving mode) ──fault──► fault thread: the chunk holding the page
//                                                                │ pread the whole chunk (1 MiB) from the
//   prefetch threads: every chunk in turn, the same way ─────────┤ one open fd, BLAKE3 it, compare with
//                                                                │ the manifest's digest for that chunk
//                                                                ▼
//                                               UFFDIO_COPY into the task (EEXIST: already there, fine)
//
// A chunk is hashed and copied from the same private buffer, so what reaches the task is what matched.
// The manifest's per-chunk digests are checked against its (signed) root before anything is served.
// A chunk that does not match, or that cannot be read (the image truncated or unreadable), kills the
// task with SIGKILL before any byte of it is copied: the faulting thread never returns to user space,
// and no other thread can read a page that was never copied (it faults and waits too). The failure names
// the chunk and its byte range.
//
// Chunks that hold pages outside the userfaultfd's ranges (a private file mapping's COW pages, shared
// memory) are filled eagerly, before the task runs, verified the same way. Pages of a registered VMA
// that the image does not hold (never touched before the dump) are served as zero pages. Once every
// chunk is in, the userfaultfd is closed: its ranges are unregistered and the task is an ordinary one.
//
// A fork() before the task is fully resident (UFFD_FEATURE_EVENT_FORK: the fork waits until the pager
// has read it) is not served yet: the child's copy of the registrations comes with a userfaultfd of its
// own, which the pager holds (so the child's missing pages wait, never read as zeros) while it kills the
// task, its process group and its children (EFORK).
//
// The pager outlives the native restore call: the addon keeps it (by a handle) until wait() returns,
// and a pager destroyed before the task is fully resident kills the task (it could otherwise fault in
// zero pages where its data should be).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "page_fill.h"
#include "task_model.h"
#include "uffd_fill.h"

namespace cryopod {

struct LazyStatus {
  enum class State { kServing, kResident, kExited, kFailed };
  State state = State::kServing;
  uint64_t chunks = 0;             // of the image
  uint64_t chunks_eager = 0;       // filled before the task ran
  uint64_t chunks_on_fault = 0;    // first needed by a fault
  uint64_t chunks_prefetched = 0;  // filled by the prefetcher before anything touched them
  uint64_t faults = 0;             // fault messages read
  uint64_t zero_faults = 0;        // served with a zero page (no data in the image, or discarded)
  double resident_seconds = 0;     // from the task's release to fully resident (or the end)
  std::string code, message, path;  // kFailed: the error (ECHECKSUM, EBOUNDS, EIO, ...)
};

class LazyPager {
 public:
  // Takes the stub's serving userfaultfd and its own fd of the pages image (`size` bytes, `runs` in
  // image order). Throws ECHECKSUM when the digest's chunk list does not hash to its root.
  LazyPager(int pid, StubUffd uffd, int image_fd, uint64_t size, std::string path, const std::vector<PageRun>& runs,
            const PagesDigest& digest, bool prefetch);
  ~LazyPager();
  LazyPager(const LazyPager&) = delete;
  LazyPager& operator=(const LazyPager&) = delete;

  // While the stub is stopped and its VMAs writable: fills every chunk holding pages outside the
  // userfaultfd's ranges, then starts serving faults (the rest of the morph may touch the memory).
  void fill_eager_and_serve();
  // The task runs from now on: starts the prefetch threads.
  void released();
  // Blocks until the task is fully resident, has exited, or was killed by a failure (EFORK: it forked before it was resident); then closes the
  // userfaultfd. Called once, by one thread.
  LazyStatus wait();
  // Kills the task (it is not resident) and stops serving; wait() then reports the failure.
  void abort(const std::string& why);

 private:
  struct Segment {
    uint64_t vaddr, len, image_off;
    bool uffd;  // in a registered range (else written with process_vm_writev, eagerly)
  };
  enum : uint8_t { kTodo, kBusy, kDone, kFailed };
  enum class Source { kEager, kFault, kPrefetch };

  uint8_t serve_chunk(uint64_t c, uint8_t* buf, Source source);
  void copy_out(const Segment& s, uint64_t from, uint64_t len, const uint8_t* src, bool eager);
  bool uffd_copy(uint64_t dst, const uint8_t* src, uint64_t len);
  void zero_page(uint64_t addr);
  void on_fault(uint64_t addr, uint8_t* buf);
  void fault_loop();
  void prefetch_loop();
  void fail(const std::string& code, const std::string& message);
  void wake_everyone();
  void on_fork(int child_uffd);
  void finish(LazyStatus::State state);
  void stop_threads();
  bool stopping() const { return stop_.load(std::memory_order_relaxed); }

  int pid_, pidfd_ = -1, image_fd_, wake_fd_ = -1;
  StubUffd uffd_;
  uint64_t size_, chunk_bytes_, nchunks_;
  std::string path_, chunks_;  // raw digests, 32 bytes each
  HashAlgo algo_;
  bool prefetch_;
  std::vector<Segment> segments_;  // image order
  std::vector<size_t> by_addr_;    // indexes of uffd segments, by vaddr
  std::vector<int> child_uffds_;   // of children forked before resident: held until the pager goes
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::atomic<uint64_t> remaining_{0}, next_prefetch_{0};
  std::atomic<uint64_t> on_fault_{0}, prefetched_{0}, eager_{0}, faults_{0}, zero_faults_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable done_cv_;
  bool finished_ = false;
  LazyStatus result_;
  std::atomic<double> released_at_{0};
  std::thread fault_thread_;
  std::vector<std::thread> prefetchers_;
};

// A restore request's lazy part (RestoreRequest::lazy): in, whether to prefetch; out, the pager serving
// the task, or why the restore filled eagerly after all.
struct LazyRequest {
  bool prefetch = true;
  std::unique_ptr<LazyPager> pager;
  std::string eager_reason;
};

// In morph_memory, instead of fill_pages: opens the serving userfaultfd and the image, and starts the
// pager (eager chunks filled). False, with req.eager_reason, when this task cannot be served lazily
// (no per-chunk digests, nothing to serve, no serving userfaultfd): the caller then fills eagerly.
class Morph;
bool start_lazy(Morph& m, const TaskImage& img, const std::string& pages_path, PagesVerification* verify, LazyRequest& req);

}  // namespace cryopod
