#include "page_copy.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>

#include "errors.h"
#include "page_bitmap.h"
#include "page_fill.h"
#include "remote_syscall.h"

namespace cryopod {

namespace {

constexpr size_t kBatchBytes = 8 << 20;  // bounded buffer: RSS does not grow with the victim
constexpr size_t kMaxIov = 1024;         // IOV_MAX

void write_all(int fd, const uint8_t* p, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write pages image");
    }
    p += n;
    len -= n;
  }
}

const Vma* vma_of(const std::vector<Vma>& vmas, uint64_t addr) {
  for (const Vma& v : vmas)
    if (addr >= v.start && addr < v.end) return &v;
  return nullptr;
}

}  // namespace

uint64_t dump_pages(int pid, const std::vector<Vma>& vmas, const std::vector<PageRun>& runs, int out_fd) {
  std::vector<uint8_t> buf(kBatchBytes);
  std::vector<iovec> remote;
  remote.reserve(kMaxIov);
  size_t filled = 0;
  uint64_t total = 0;

  auto flush = [&]() {
    if (remote.empty()) return;
    iovec local{buf.data(), filled};
    ssize_t n = process_vm_readv(pid, &local, 1, remote.data(), remote.size(), 0);
    if (n < 0) throw_errno("process_vm_readv pid " + std::to_string(pid));
    if ((size_t)n != filled)  // a partial read means the layout changed under us: never write a short image
      throw CoreError("EIO", "process_vm_readv pid " + std::to_string(pid) + " read " + std::to_string(n) +
                                 " of " + std::to_string(filled) + " bytes");
    write_all(out_fd, buf.data(), filled);
    total += filled;
    remote.clear();
    filled = 0;
  };

  for (const PageRun& r : runs) {
    const Vma* v = vma_of(vmas, r.vaddr);
    if (v && !(v->prot & PROT_READ)) {
      // Unreadable mapping (PROT_NONE with data): /proc/PID/mem reads with FOLL_FORCE.
      flush();
      for (uint64_t i = 0; i < r.nr_pages; ++i) {
        remote_mem_read(pid, r.vaddr + i * kPageSize, buf.data(), kPageSize);
        write_all(out_fd, buf.data(), kPageSize);
        total += kPageSize;
      }
      continue;
    }
    uint64_t addr = r.vaddr, left = r.nr_pages * kPageSize;
    while (left > 0) {
      if (filled == buf.size() || remote.size() == kMaxIov) flush();
      size_t take = std::min<uint64_t>(left, buf.size() - filled);
      remote.push_back(iovec{(void*)addr, take});
      filled += take;
      addr += take;
      left -= take;
    }
  }
  flush();
  return total;
}

int open_pages_image(const std::string& pages_path, uint64_t need) {
  // The one open of the image: never through a symlink (one planted in the directory would fill the
  // task from another file), and only a regular file; everything filled is read from this fd.
  int fd = open(pages_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw_errno_at("open", pages_path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    throw_errno_at("stat", pages_path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    throw CoreError("EBOUNDS", pages_path + " is not a regular file", 0, "fill", pages_path);
  }
  if ((uint64_t)st.st_size != need) {
    close(fd);
    throw CoreError("EBOUNDS", pages_path + " holds " + std::to_string(st.st_size) + " bytes but the pagemap needs " +
                                   std::to_string(need), 0, "fill", pages_path);
  }
  return fd;
}

void fill_pages(int pid, const std::vector<PageRun>& runs, const std::string& pages_path, PagesVerification* verify,
                const StubUffd* uffd) {
  uint64_t need = 0;
  for (const PageRun& r : runs) need += r.nr_pages * kPageSize;  // bounded: check_memory_layout ran first
  int fd = open_pages_image(pages_path, need);
  // Verified in the same pass when the request carries the manifest's digest (page_fill.h).
  try {
    fill_from_image(pid, runs, fd, need, pages_path, verify, uffd);
  } catch (...) {
    close(fd);
    throw;
  }
  close(fd);
}

}  // namespace cryopod
