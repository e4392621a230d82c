#include "page_bitmap.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "errors.h"

namespace cryopod {

namespace {
constexpr uint64_t kPresent = 1ULL << 63, kSwapped = 1ULL << 62, kFileOrShared = 1ULL << 61;
constexpr uint64_t kPfnMask = (1ULL << 55) - 1;
constexpr size_t kEntriesPerRead = 64 * 1024;  // 512 KiB of pagemap per read
}  // namespace

uint64_t zero_page_pfn() {
  void* p = mmap(nullptr, kPageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw_errno("mmap (zero page probe)");
  volatile char c = *(volatile char*)p;  // a read fault maps the shared zero page
  (void)c;
  uint64_t entry = 0;
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (pread(fd, &entry, sizeof entry, (off_t)((uint64_t)p / kPageSize * 8)) != sizeof entry) entry = 0;
    close(fd);
  }
  munmap(p, kPageSize);
  return (entry & kPresent) ? (entry & kPfnMask) : 0;
}

bool page_must_be_dumped(const Vma& vma, uint64_t entry, uint64_t zero_pfn) {
  if (vma.kind != VmaKind::Anon && vma.kind != VmaKind::FilePrivate) return false;
  if (entry & kSwapped) return true;  // only anonymous (incl. COW-ed) pages go to swap
  if (!(entry & kPresent)) return false;
  if (entry & kFileOrShared) return false;  // page cache: the file still has it
  uint64_t pfn = entry & kPfnMask;
  if (zero_pfn != 0 && pfn == zero_pfn) return false;
  return true;
}

void append_page(std::vector<PageRun>& runs, uint64_t vaddr, size_t first_mergeable) {
  if (runs.size() > first_mergeable && runs.back().vaddr + runs.back().nr_pages * kPageSize == vaddr) {
    runs.back().nr_pages++;
  } else {
    runs.push_back(PageRun{vaddr, 1});
  }
}

std::vector<PageRun> collect_page_runs(int pid, const std::vector<Vma>& vmas, uint64_t zero_pfn) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", path);
  std::vector<PageRun> runs;
  std::vector<uint64_t> entries(kEntriesPerRead);
  try {
    for (const Vma& v : vmas) {
      if (v.kind == VmaKind::Shmem) {
        append_shmem_runs(pid, v, runs);
        continue;
      }
      if (v.kind != VmaKind::Anon && v.kind != VmaKind::FilePrivate) continue;
      size_t first_of_vma = runs.size();
      for (uint64_t addr = v.start; addr < v.end;) {
        size_t n = std::min<uint64_t>(kEntriesPerRead, (v.end - addr) / kPageSize);
        ssize_t want = (ssize_t)(n * sizeof(uint64_t));
        ssize_t got = pread(fd, entries.data(), want, (off_t)(addr / kPageSize * sizeof(uint64_t)));
        if (got != want) throw_errno_at("read", path, got < 0 ? errno : EIO);
        for (size_t i = 0; i < n; ++i)
          if (page_must_be_dumped(v, entries[i], zero_pfn)) append_page(runs, addr + i * kPageSize, first_of_vma);
        addr += n * kPageSize;
      }
    }
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
  return runs;
}

void append_shmem_runs(int pid, const Vma& v, std::vector<PageRun>& runs) {
  char range[64];
  snprintf(range, sizeof range, "%llx-%llx", (unsigned long long)v.start, (unsigned long long)v.end);
  std::string link = "/proc/" + std::to_string(pid) + "/map_files/" + range;
  int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", link);
  size_t first = runs.size();
  off_t pos = (off_t)v.pgoff, end = (off_t)std::min<uint64_t>(v.pgoff + v.length(), v.shm_size);
  while (pos < end) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 || data >= end) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    for (off_t o = data & ~(off_t)(kPageSize - 1); o < hole; o += kPageSize)
      append_page(runs, v.start + (uint64_t)(o - (off_t)v.pgoff), first);
    pos = hole;
  }
  close(fd);
}

namespace {
std::vector<uint64_t> pagemap_entries(int pid, uint64_t addr, size_t n) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", path);
  std::vector<uint64_t> e(n);
  ssize_t want = (ssize_t)(n * sizeof(uint64_t));
  ssize_t got = pread(fd, e.data(), want, (off_t)(addr / kPageSize * sizeof(uint64_t)));
  close(fd);
  if (got != want) throw_errno_at("read", path, got < 0 ? errno : EIO);
  return e;
}
}  // namespace

void split_inherited(int child, int parent, const std::vector<Vma>& child_vmas, const std::vector<Vma>& parent_vmas,
                     std::vector<PageRun>& runs, std::vector<PageRun>& inherited) {
  std::vector<PageRun> own;
  for (const PageRun& r : runs) {
    const Vma* cv = nullptr;
    for (const Vma& v : child_vmas)
      if (r.vaddr >= v.start && r.vaddr < v.end) cv = &v;
    const Vma* pv = nullptr;
    if (cv && (cv->kind == VmaKind::Anon || cv->kind == VmaKind::FilePrivate))
      for (const Vma& v : parent_vmas)
        if (v.start == cv->start && v.end == cv->end && v.kind == cv->kind) pv = &v;
    if (!pv) {
      own.push_back(r);
      continue;
    }
    std::vector<uint64_t> ce = pagemap_entries(child, r.vaddr, r.nr_pages);
    std::vector<uint64_t> pe = pagemap_entries(parent, r.vaddr, r.nr_pages);
    size_t own_first = own.size(), inh_first = inherited.size();
    for (uint64_t i = 0; i < r.nr_pages; ++i) {
      uint64_t cpfn = ce[i] & kPfnMask, ppfn = pe[i] & kPfnMask;
      bool shared = (ce[i] & kPresent) && (pe[i] & kPresent) && cpfn != 0 && cpfn == ppfn;
      append_page(shared ? inherited : own, r.vaddr + i * kPageSize, shared ? inh_first : own_first);
    }
  }
  runs.swap(own);
}

}  // namespace cryopod
