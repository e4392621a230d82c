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
  if (fd < 0) throw_errno("open " + path);
  std::vector<PageRun> runs;
  std::vector<uint64_t> entries(kEntriesPerRead);
  try {
    for (const Vma& v : vmas) {
      if (v.kind != VmaKind::Anon && v.kind != VmaKind::FilePrivate) continue;
      size_t first_of_vma = runs.size();
      for (uint64_t addr = v.start; addr < v.end;) {
        size_t n = std::min<uint64_t>(kEntriesPerRead, (v.end - addr) / kPageSize);
        ssize_t want = (ssize_t)(n * sizeof(uint64_t));
        ssize_t got = pread(fd, entries.data(), want, (off_t)(addr / kPageSize * sizeof(uint64_t)));
        if (got != want) throw_errno("read " + path, got < 0 ? errno : EIO);
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

}  // namespace cryopod
