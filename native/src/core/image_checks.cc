#include "image_checks.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "errors.h"
#include "page_bitmap.h"

namespace cryopod {

namespace {

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

bool has_pages(VmaKind k) { return k == VmaKind::Anon || k == VmaKind::FilePrivate || k == VmaKind::Shmem; }
bool may_inherit(VmaKind k) { return k == VmaKind::Anon || k == VmaKind::FilePrivate; }

// Walks runs in address order against the VMAs (already checked); returns the bytes they cover.
template <typename Each>
uint64_t walk_runs(const std::vector<Vma>& vmas, const std::vector<PageRun>& runs, const char* label, Each each) {
  if (runs.size() > kMaxRuns)
    throw CoreError("ETOOBIG", std::to_string(runs.size()) + " " + label + "s, over the cap of " + std::to_string(kMaxRuns));
  uint64_t prev_end = 0, bytes = 0;
  size_t vi = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const PageRun& r = runs[i];
    std::string what = std::string(label) + " " + std::to_string(i) + " (" + hex(r.vaddr) + ", " + std::to_string(r.nr_pages) + " pages)";
    if (r.vaddr % kPageSize || r.nr_pages == 0) throw CoreError("EBOUNDS", what + " is not page-aligned or has no pages");
    // Compared before multiplying: a claimed count near 2^64 must not wrap around to a small end.
    if (r.vaddr >= kUserTop || r.nr_pages > (kUserTop - r.vaddr) / kPageSize)
      throw CoreError("EBOUNDS", what + " ends above the highest user address");
    uint64_t end = r.vaddr + r.nr_pages * kPageSize;
    if (r.vaddr < prev_end) throw CoreError("EBOUNDS", what + " overlaps or precedes the " + label + " before it");
    prev_end = end;
    while (vi < vmas.size() && vmas[vi].end <= r.vaddr) ++vi;
    if (vi == vmas.size() || vmas[vi].start > r.vaddr || vmas[vi].end < end)
      throw CoreError("EBOUNDS", what + " is not inside one VMA");
    each(r, vmas[vi], end, what);
    bytes += end - r.vaddr;
  }
  return bytes;
}

}  // namespace

uint64_t check_memory_layout(const TaskImage& img) {
  if (img.vmas.size() > kMaxVmas)
    throw CoreError("ETOOBIG", std::to_string(img.vmas.size()) + " VMAs, over the cap of " + std::to_string(kMaxVmas));
  uint64_t prev_end = 0;
  for (size_t i = 0; i < img.vmas.size(); ++i) {
    const Vma& v = img.vmas[i];
    std::string what = "VMA " + std::to_string(i) + " (" + hex(v.start) + "-" + hex(v.end) + " " + v.name + ")";
    if (v.start >= v.end || v.start % kPageSize || v.end % kPageSize || v.end > kUserTop)
      throw CoreError("EIMAGE", what + " has a bad range");
    if (v.start < prev_end) throw CoreError("EIMAGE", what + " overlaps or precedes the VMA before it");
    prev_end = v.end;
    if ((v.kind == VmaKind::FilePrivate || v.kind == VmaKind::FileShared) && v.path.empty())
      throw CoreError("EIMAGE", what + " is a file VMA without a path");
  }
  uint64_t bytes = walk_runs(img.vmas, img.pages, "page run", [](const PageRun&, const Vma& v, uint64_t, const std::string& what) {
    if (!has_pages(v.kind)) throw CoreError("EBOUNDS", what + " is not inside a private or shared-memory VMA");
  });
  size_t ri = 0;
  walk_runs(img.vmas, img.inherited, "inherited run", [&](const PageRun& r, const Vma& v, uint64_t end, const std::string& what) {
    if (!may_inherit(v.kind)) throw CoreError("EBOUNDS", what + " lies in a VMA that is not shared copy-on-write with a parent");
    while (ri < img.pages.size() && img.pages[ri].vaddr + img.pages[ri].nr_pages * kPageSize <= r.vaddr) ++ri;
    if (ri < img.pages.size() && img.pages[ri].vaddr < end) throw CoreError("EBOUNDS", what + " overlaps a dumped page run");
  });
  return bytes;
}

std::vector<std::pair<uint64_t, uint64_t>> uncovered(uint64_t start, uint64_t end,
                                                     const std::vector<std::pair<uint64_t, uint64_t>>& present) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  uint64_t at = start;  // the first address not yet known to be covered
  auto it = std::upper_bound(present.begin(), present.end(), std::make_pair(start, UINT64_MAX));
  if (it != present.begin()) --it;  // a range starting before `start` may reach into it
  for (; it != present.end() && it->first < end && at < end; ++it) {
    if (it->second <= at) continue;
    if (it->first > at) out.push_back({at, it->first});
    at = std::min(it->second, end);
  }
  if (at < end) out.push_back({at, end});
  return out;
}

}  // namespace cryopod
