#include "page_fill.h"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "errors.h"
#include "image_hash.h"
#include "uffd_fill.h"
#include "page_bitmap.h"

namespace cryopod {

namespace {

// Big enough that syscalls are few, small enough to stay in L2 between the hash and the copy out.
constexpr uint64_t kBlockBytes = 512 * 1024;
// Unit of work when nothing is verified (no chunk layout to follow).
constexpr uint64_t kPlainUnitBytes = 32ull << 20;
constexpr size_t kMaxIov = 1024;  // IOV_MAX

// Where each byte of the image goes: run i covers image bytes [offset[i], offset[i+1]).
struct Layout {
  const std::vector<PageRun>& runs;
  std::vector<uint64_t> offset;
  explicit Layout(const std::vector<PageRun>& r) : runs(r) {
    offset.reserve(r.size() + 1);
    uint64_t off = 0;
    for (const PageRun& run : r) {
      offset.push_back(off);
      off += run.nr_pages * kPageSize;
    }
    offset.push_back(off);
  }
  // Remote iovecs for image bytes [off, off + len).
  void remote(uint64_t off, uint64_t len, std::vector<iovec>& out) const {
    out.clear();
    size_t i = std::upper_bound(offset.begin(), offset.end(), off) - offset.begin() - 1;
    while (len > 0) {
      uint64_t in_run = off - offset[i], take = std::min(len, offset[i + 1] - off);
      out.push_back(iovec{(void*)(runs[i].vaddr + in_run), take});
      off += take;
      len -= take;
      ++i;
    }
  }
};

void read_exact(int fd, uint8_t* buf, uint64_t len, uint64_t off, const std::string& path) {
  while (len > 0) {
    ssize_t n = pread(fd, buf, len, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno_at("read", path);
    if (n == 0) throw CoreError("EBOUNDS", path + " ended early (changed during the restore?)");
    buf += n;
    off += n;
    len -= n;
  }
}

// process_vm_writev of one block, resuming after a short count; ranges the stub's userfaultfd covers go
// through UFFDIO_COPY instead.
void write_block(int pid, const uint8_t* buf, std::vector<iovec>& remote, const StubUffd* uffd) {
  if (uffd && uffd->fd() >= 0) {
    std::vector<iovec> rest;
    const uint8_t* p = buf;
    for (const iovec& r : remote) {
      if (!uffd->copy((uint64_t)r.iov_base, p, r.iov_len)) {
        // Not registered (a file mapping's COW pages): written below, from its place in the buffer.
        iovec local{(void*)p, r.iov_len};
        iovec one = r;
        while (local.iov_len > 0) {
          ssize_t n = process_vm_writev(pid, &local, 1, &one, 1, 0);
          if (n <= 0) throw_errno("process_vm_writev pid " + std::to_string(pid), n == 0 ? EIO : errno);
          local.iov_base = (char*)local.iov_base + n;
          local.iov_len -= (size_t)n;
          one.iov_base = (char*)one.iov_base + n;
          one.iov_len -= (size_t)n;
        }
      }
      p += r.iov_len;
    }
    return;
  }
  size_t first = 0;
  const uint8_t* p = buf;
  while (first < remote.size()) {
    size_t n_iov = std::min(kMaxIov, remote.size() - first);
    uint64_t want = 0;
    for (size_t i = first; i < first + n_iov; ++i) want += remote[i].iov_len;
    iovec local{(void*)p, want};
    ssize_t n = process_vm_writev(pid, &local, 1, &remote[first], n_iov, 0);
    if (n <= 0) throw_errno("process_vm_writev pid " + std::to_string(pid), n == 0 ? EIO : errno);
    p += n;
    uint64_t left = (uint64_t)n;
    while (left > 0 && left >= remote[first].iov_len) left -= remote[first++].iov_len;
    if (left > 0) {
      remote[first].iov_base = (char*)remote[first].iov_base + left;
      remote[first].iov_len -= left;
    }
  }
}

}  // namespace

const PagesDigest* PagesVerification::find(const std::string& path) const {
  auto it = digests_.find(path);
  return it == digests_.end() ? nullptr : &it->second;
}

void PagesVerification::verified(const std::string& path) {
  if (digests_.count(path)) verified_.insert(path);
}

std::vector<std::string> PagesVerification::unverified() const {
  std::vector<std::string> out;
  for (const auto& [path, d] : digests_)
    if (!verified_.count(path)) out.push_back(path);
  return out;
}

unsigned fill_threads() {
  if (const char* env = std::getenv("CRYOPOD_FILL_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1 && n <= 16) return (unsigned)n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return std::max(1u, std::min(hw, 4u));
}

void fill_from_image(int pid, const std::vector<PageRun>& runs, int fd, uint64_t size, const std::string& path,
                     PagesVerification* verify, const StubUffd* uffd) {
  const PagesDigest* expect = verify ? verify->find(path) : nullptr;
  if (size == 0 && !expect) return;
  Layout layout(runs);
  // A whole-file digest is one sequential hash: one unit, one thread. Chunked digests follow the
  // manifest's chunks, so each unit's digest is one of the tree's leaves.
  uint64_t unit = expect ? (expect->chunk_bytes ? expect->chunk_bytes : std::max<uint64_t>(size, 1)) : kPlainUnitBytes;
  uint64_t units = std::max<uint64_t>(1, (size + unit - 1) / unit);
  std::vector<std::string> digests(expect ? units : 0);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex failure_mu;
  std::exception_ptr failure;

  auto worker = [&]() {
    try {
      std::unique_ptr<uint8_t[]> buf(new uint8_t[kBlockBytes]);
      std::vector<iovec> remote;
      for (uint64_t u; !stop.load(std::memory_order_relaxed) && (u = next.fetch_add(1)) < units;) {
        std::unique_ptr<ChunkHasher> hash;
        if (expect) hash = std::make_unique<ChunkHasher>(expect->algo);
        uint64_t end = std::min(size, (u + 1) * unit);
        for (uint64_t off = u * unit; off < end && !stop.load(std::memory_order_relaxed); off += kBlockBytes) {
          uint64_t len = std::min(kBlockBytes, end - off);
          read_exact(fd, buf.get(), len, off, path);
          if (hash) hash->update(buf.get(), len);
          layout.remote(off, len, remote);
          write_block(pid, buf.get(), remote, uffd);
        }
        if (hash) digests[u] = hash->digest();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mu);
      if (!failure) failure = std::current_exception();
      stop = true;
    }
  };

  unsigned n = (unsigned)std::min<uint64_t>(fill_threads(), units);
  std::vector<std::thread> helpers;
  for (unsigned i = 1; i < n; ++i) {
    try {
      helpers.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // no more threads: the ones we have share the units
    }
  }
  worker();  // this thread is one of the workers
  for (std::thread& t : helpers) t.join();
  if (failure) std::rethrow_exception(failure);
  if (!expect) return;

  std::string root;
  if (expect->chunk_bytes) {
    ChunkHasher tree(expect->algo);
    for (const std::string& d : digests) tree.update(d.data(), d.size());
    root = to_hex(tree.digest());
  } else {
    root = to_hex(digests[0]);
  }
  const char* name = expect->algo == HashAlgo::kBlake3 ? "blake3" : "sha256";
  if (root != expect->hex)
    throw CoreError("ECHECKSUM", path + ": " + name + " is " + root + ", the manifest says " + expect->hex, 0, "verify", path);
  verify->verified(path);
}

}  // namespace cryopod
