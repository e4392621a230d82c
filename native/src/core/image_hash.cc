#include "image_hash.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <vector>

#include "blake3.h"
#include "errors.h"

namespace cryopod {

namespace {

// Small enough to stay in L2 between the read and the hash.
constexpr uint64_t kReadBytes = 1 << 20;

EVP_MD_CTX* sha(void* s) { return (EVP_MD_CTX*)s; }
blake3_hasher* b3(void* s) { return (blake3_hasher*)s; }

// Reads [off, off + len) of fd (pread: the writer's file offset is not moved) into ChunkHasher h.
void hash_range(int fd, uint64_t off, uint64_t len, uint8_t* buf, ChunkHasher& h, const std::string& path) {
  while (len > 0) {
    ssize_t n = pread(fd, buf, std::min(len, kReadBytes), (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno_at("read", path);
    if (n == 0) throw CoreError("EBOUNDS", path + " ended early (changed while it was hashed?)");
    h.update(buf, (size_t)n);
    off += (uint64_t)n;
    len -= (uint64_t)n;
  }
}

}  // namespace

ChunkHasher::ChunkHasher(HashAlgo algo) : algo_(algo), state_(nullptr) {
  if (algo_ == HashAlgo::kBlake3) {
    auto* h = new blake3_hasher;
    blake3_hasher_init(h);
    state_ = h;
    return;
  }
  // OpenSSL from the Node binary (addons link against its exported symbols; the SHA-NI path included).
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    throw CoreError("EINTERNAL", "sha256 init failed");
  }
  state_ = ctx;
}

ChunkHasher::~ChunkHasher() {
  if (algo_ == HashAlgo::kBlake3)
    delete b3(state_);
  else
    EVP_MD_CTX_free(sha(state_));
}

void ChunkHasher::update(const void* p, size_t n) {
  if (algo_ == HashAlgo::kBlake3) {
    blake3_hasher_update(b3(state_), p, n);
  } else if (EVP_DigestUpdate(sha(state_), p, n) != 1) {
    throw CoreError("EINTERNAL", "sha256 update failed");
  }
}

std::string ChunkHasher::digest() {
  unsigned char md[32];
  if (algo_ == HashAlgo::kBlake3) {
    blake3_hasher_finalize(b3(state_), md, sizeof md);
  } else {
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(sha(state_), md, &len) != 1 || len != 32) throw CoreError("EINTERNAL", "sha256 final failed");
  }
  return std::string((const char*)md, 32);
}

std::string to_hex(const std::string& raw) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

std::string root_of_chunks(const std::string& chunks, HashAlgo algo) {
  ChunkHasher root(algo);
  root.update(chunks.data(), chunks.size());
  return to_hex(root.digest());
}

std::string hash_file_chunked(int fd, uint64_t size, uint64_t chunk_bytes, HashAlgo algo, const std::string& path,
                              std::string* chunk_digests) {
  if (chunk_bytes == 0) throw CoreError("EINVAL", "a chunk size of 0");
  uint64_t chunks = std::max<uint64_t>(1, (size + chunk_bytes - 1) / chunk_bytes);
  std::vector<std::string> digests(chunks);
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  std::exception_ptr failure;
  auto worker = [&]() {
    try {
      std::vector<uint8_t> buf(kReadBytes);
      for (uint64_t c; !failure && (c = next.fetch_add(1)) < chunks;) {
        ChunkHasher h(algo);
        uint64_t off = c * chunk_bytes;
        hash_range(fd, off, std::min(chunk_bytes, size - std::min(size, off)), buf.data(), h, path);
        digests[c] = h.digest();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure) failure = std::current_exception();
    }
  };
  unsigned n = (unsigned)std::min<uint64_t>(chunks, std::max(1u, std::min(std::thread::hardware_concurrency(), 4u)));
  std::vector<std::thread> helpers;
  for (unsigned i = 1; i < n; ++i) {
    try {
      helpers.emplace_back(worker);
    } catch (const std::system_error&) {
      break;
    }
  }
  worker();
  for (std::thread& t : helpers) t.join();
  if (failure) std::rethrow_exception(failure);
  std::string all;
  for (const std::string& d : digests) all += d;
  if (chunk_digests) *chunk_digests = all;
  return root_of_chunks(all, algo);
}

ImageHashFollower::ImageHashFollower(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
  thread_ = std::thread([this] { run(); });
}

void ImageHashFollower::stop(bool abandon) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (abandon) abandoned_ = true;
    done_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ImageHashFollower::nap(unsigned micros) {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait_for(lock, std::chrono::microseconds(micros), [this] { return done_.load(); });
}

ImageHashFollower::~ImageHashFollower() { stop(true); }

std::string ImageHashFollower::finish() {
  stop(false);
  if (failure_) std::rethrow_exception(failure_);
  return root_;
}

// Hashes up to the file's current size, then waits a little for more; once the writer is done, to the end.
// CRYOPOD_HASH_FOLLOW=0 (benchmarks: the A/B of hashing in flight) waits for the writer and hashes after.
void ImageHashFollower::run() {
  try {
    const char* follow = std::getenv("CRYOPOD_HASH_FOLLOW");
    if (follow && std::string(follow) == "0")
      while (!done_.load()) nap(200000);
    if (abandoned_.load()) return;
    std::vector<std::string> digests;
    auto chunk = std::make_unique<ChunkHasher>(HashAlgo::kBlake3);
    // pread into a buffer that stays in L2, not mapped windows of the page cache: mapping, populating
    // and unmapping (a TLB shootdown on the other core each time) cost more than the copy. 1 GiB of
    // tmpfs hashed alone here: 196-234 ms (100-110 user + 87-96 sys) against 265-294 ms (107-143 +
    // 127-164) with 2 MiB windows; and the dumper's RSS no longer counts mapped image pages.
    std::vector<uint8_t> buf(kReadBytes);
    uint64_t pos = 0, in_chunk = 0;
    // Naps grow while the file does not (the freeze before the pages move: the dump's threads keep the
    // cores) and shrink again once it grows.
    unsigned pause = 200;
    for (;;) {
      bool last = done_.load();  // read before the size: everything written before done_ is seen below
      struct stat st {};
      if (fstat(fd_, &st) != 0) throw_errno_at("stat", path_);
      uint64_t size = (uint64_t)st.st_size;
      pause = pos < size ? 200 : std::min(pause * 2, 4000u);
      while (pos < size && !abandoned_.load(std::memory_order_relaxed)) {
        uint64_t take = std::min({size - pos, kHashChunkBytes - in_chunk, kReadBytes});
        hash_range(fd_, pos, take, buf.data(), *chunk, path_);
        pos += take;
        in_chunk += take;
        if (in_chunk == kHashChunkBytes) {
          digests.push_back(chunk->digest());
          chunk = std::make_unique<ChunkHasher>(HashAlgo::kBlake3);
          in_chunk = 0;
        }
      }
      if (last || abandoned_.load()) break;
      nap(pause);  // the writer moves ~1 MiB per 0.3 ms here: a short nap loses nothing; finish() wakes it
    }
    if (in_chunk > 0 || digests.empty()) digests.push_back(chunk->digest());
    std::string all;
    for (const std::string& d : digests) all += d;
    root_ = root_of_chunks(all, HashAlgo::kBlake3);
    chunks_hex_ = to_hex(all);
  } catch (...) {
    failure_ = std::current_exception();
  }
}

}  // namespace cryopod
