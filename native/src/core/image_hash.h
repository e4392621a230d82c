// Hashes of pages images: the digests the manifest lists for them, computed where the bytes move.
//
//   image bytes  [ chunk 0 (1 MiB) | chunk 1 | ... | chunk n-1 (the rest) ]
//                      │ H              │ H            │ H
//                      ▼                ▼              ▼
//   root  =  H( digest 0 ‖ digest 1 ‖ ... ‖ digest n-1 )        (n = max(1, ceil(size / chunk)))
//
// H is BLAKE3 for images written now (manifest v3: ~6 GB/s per core here with AVX-512, against
// ~1.9 GB/s for sha256 with SHA-NI, so hashing keeps up with the page path on the other core) and
// sha256 for older checkpoints (v2 chunked, or one whole-file sha256). Chunks let every core hash one
// file at once: the restore's fill hashes each chunk as it writes it into the stopped stub. Since manifest
// v4 the chunks are 1 MiB (32 MiB before) and the manifest lists every chunk's digest too, so that a lazy
// restore can verify the one chunk a page fault needs on its own (~0.2 ms to hash here) against a listed
// digest, the list itself checked against the root first (lazy_pager.h).
//
// ImageHashFollower hashes an image while a dump writes it: a thread reads what the writer has already
// put in the file (still hot in the page cache and the CPU's caches), so no pass over the image is left
// for after the dump. The writer (splice from the parasite's pipes, or process_vm_readv) is not touched.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <thread>

namespace cryopod {

enum class HashAlgo { kSha256, kBlake3 };

// Chunk size of the pages images written now (PAGES_CHUNK_BYTES in images/manifest.ts).
constexpr uint64_t kHashChunkBytes = 1ull << 20;

// One running hash of either algorithm (OpenSSL's sha256 from the Node binary, BLAKE3 from its C sources).
class ChunkHasher {
 public:
  explicit ChunkHasher(HashAlgo algo);
  ~ChunkHasher();
  ChunkHasher(const ChunkHasher&) = delete;
  ChunkHasher& operator=(const ChunkHasher&) = delete;
  void update(const void* p, size_t n);
  // 32 raw bytes; the hasher is spent afterwards.
  std::string digest();

 private:
  HashAlgo algo_;
  void* state_;
};

std::string to_hex(const std::string& raw);

// The chunked root (above) of bytes [0, size) of fd, the chunks hashed on every core (at most 4); with
// `chunks`, every chunk's raw digest too, concatenated in order.
std::string hash_file_chunked(int fd, uint64_t size, uint64_t chunk_bytes, HashAlgo algo, const std::string& path,
                              std::string* chunks = nullptr);

// The root over raw chunk digests concatenated in order (32 bytes each).
std::string root_of_chunks(const std::string& chunks, HashAlgo algo);

// Follows an image file while a writer appends to it from offset 0, and hashes it (BLAKE3, chunked).
class ImageHashFollower {
 public:
  ImageHashFollower(int fd, std::string path);
  ~ImageHashFollower();  // stops the thread (a failed dump: the digest is not needed)
  ImageHashFollower(const ImageHashFollower&) = delete;
  ImageHashFollower& operator=(const ImageHashFollower&) = delete;
  // The writer is done: hashes what is left and returns the root (lower-case hex) of the whole file.
  std::string finish();
  // After finish(): every chunk's digest, lower-case hex, concatenated in order (64 digits per chunk).
  std::string chunks_hex() const { return chunks_hex_; }

 private:
  void run();
  void stop(bool abandon);
  void nap(unsigned micros);  // sleeps, or returns at once when stopped
  int fd_;
  std::string path_;
  std::atomic<bool> done_{false};
  std::atomic<bool> abandoned_{false};  // a failed dump: stop at once, hash nothing more
  std::mutex mu_;
  std::condition_variable wake_;
  std::string root_, chunks_hex_;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace cryopod
