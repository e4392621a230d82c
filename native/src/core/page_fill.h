// Filling a restored task's memory from its pages image, and verifying the image in the same pass.
//
//   pages image ──pread──► block buffer (per thread, cache-sized) ──BLAKE3 (sha256)──► chunk digest
//                                          └──process_vm_writev──► the stopped stub's memory
//
// The image is cut into units (the manifest's hash chunks when it is verified here, else fixed-size
// pieces); every core takes units from a shared counter, so both the first touch of the stub's fresh
// memory (page allocation and zeroing, the bulk of a restore's time) and the hashing run on every core.
// Each block is hashed and written from the same private buffer: the bytes that reach the task are the
// bytes that were hashed, even if the file changes under us.
//
// Verification is the caller's promise to the manifest: when the restore's request carries a digest for
// the image (its PagesVerification), fill_pages throws ECHECKSUM after the fill if the image does not match it. The
// stub is still stopped then (it runs no instruction before its registers are loaded at the very end of
// the restore), and the restore's failure path kills it: a tampered image never runs.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "image_hash.h"
#include "task_model.h"

namespace cryopod {

// What the manifest lists for one pages image.
struct PagesDigest {
  HashAlgo algo = HashAlgo::kSha256;  // BLAKE3 since manifest v3
  std::string hex;                    // lower-case hex
  uint64_t chunk_bytes = 0;           // > 0: the hash over the digests of chunks of this size; 0: whole file
  std::string chunks;                 // manifest v4: every chunk's raw digest (32 bytes each), in order; may be empty
};

// The digests a restore's fills must check (by pages image path), and which of them they did. A restore
// request points at one (RestoreRequest::verify, TreeRestoreRequest::verify); the fills of that restore,
// and only those, see it. One restore at a time uses it (the fills record into it on the restore's thread).
class PagesVerification {
 public:
  explicit PagesVerification(std::map<std::string, PagesDigest> digests) : digests_(std::move(digests)) {}
  PagesVerification(const PagesVerification&) = delete;
  PagesVerification& operator=(const PagesVerification&) = delete;
  // The digest registered for this path, or nullptr.
  const PagesDigest* find(const std::string& path) const;
  // Called by the fill once the image at `path` matched its digest.
  void verified(const std::string& path);
  // Registered images no fill has verified (a restore path that skipped fill_pages: a bug).
  std::vector<std::string> unverified() const;

 private:
  std::map<std::string, PagesDigest> digests_;
  std::set<std::string> verified_;
};

// Writes the image (exactly the runs' bytes, in run order) into the task, whose VMAs are mapped writable.
// `fd` is the open image of `size` bytes; `verify` (may be null) holds the digest checked after the fill
// (ECHECKSUM), and records the image as verified when it matched.
// `uffd` (may be null or empty): the stub's userfaultfd over its fresh anonymous VMAs (uffd_fill.h),
// through which those pages are copied without being zeroed first.
class StubUffd;
void fill_from_image(int pid, const std::vector<PageRun>& runs, int fd, uint64_t size, const std::string& path,
                     PagesVerification* verify, const StubUffd* uffd = nullptr);

// Threads fill_from_image uses (every core, at most 4); CRYOPOD_FILL_THREADS overrides (benchmarks).
unsigned fill_threads();

}  // namespace cryopod
