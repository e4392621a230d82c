// libFuzzer target: the native core's check of a task image's memory layout (image_checks.cc), the last
// gate before a restore maps VMAs and writes pages into a stub, against a reference written the obvious
// way (128-bit arithmetic, every run compared with every VMA and every other run). The two must agree on
// every input: accept the same images and report the same pages-file size, refuse the same ones. Where
// the image is accepted, uncovered() (what drop_foreign_pages madvises away) is checked against what
// must hold of it: inside the VMA, ascending, disjoint from every run, and with the runs covering the rest.
//
// The input is read as a stream (FuzzInput): counts, then each VMA and run; a mode byte picks small
// page-granular values (most inputs, so structure is hit often) or raw 64-bit ones (overflow paths).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "../src/core/errors.h"
#include "../src/core/image_checks.h"
#include "../src/core/page_bitmap.h"

using namespace cryopod;

namespace {

struct FuzzInput {
  const uint8_t* p;
  size_t n;
  uint8_t byte() {
    if (!n) return 0;
    --n;
    return *p++;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= (uint64_t)byte() << (8 * i);
    return v;
  }
  uint64_t value(bool raw, bool pages) {  // an address (pages=false) or a page count
    if (raw) return u64();
    uint64_t small = byte() | ((uint64_t)byte() << 8);
    return pages ? small % 64 : small * kPageSize;
  }
};

const VmaKind kKinds[] = {VmaKind::Anon, VmaKind::FilePrivate, VmaKind::FileShared, VmaKind::Vdso,
                          VmaKind::Vvar, VmaKind::Vsyscall, VmaKind::Shmem};

using u128 = unsigned __int128;

// The reference: the rules of image_checks.h, each written as directly as possible.
bool reference(const TaskImage& img, uint64_t& bytes) {
  const u128 top = kUserTop;
  for (size_t i = 0; i < img.vmas.size(); ++i) {
    const Vma& v = img.vmas[i];
    if (v.start >= v.end || v.start % kPageSize || v.end % kPageSize || v.end > top) return false;
    if (i > 0 && v.start < img.vmas[i - 1].end) return false;
    if ((v.kind == VmaKind::FilePrivate || v.kind == VmaKind::FileShared) && v.path.empty()) return false;
  }
  auto shape = [&](const std::vector<PageRun>& runs, bool inherited) -> bool {
    for (size_t i = 0; i < runs.size(); ++i) {
      const PageRun& r = runs[i];
      u128 end = (u128)r.vaddr + (u128)r.nr_pages * kPageSize;
      if (r.vaddr % kPageSize || r.nr_pages == 0 || end > top) return false;
      if (i > 0 && r.vaddr < (u128)runs[i - 1].vaddr + (u128)runs[i - 1].nr_pages * kPageSize) return false;
      bool inside = false;
      for (const Vma& v : img.vmas) {
        if (v.start <= r.vaddr && end <= v.end) {
          bool ok = inherited ? (v.kind == VmaKind::Anon || v.kind == VmaKind::FilePrivate)
                              : (v.kind == VmaKind::Anon || v.kind == VmaKind::FilePrivate || v.kind == VmaKind::Shmem);
          if (!ok) return false;
          inside = true;
        }
      }
      if (!inside) return false;
      if (inherited)
        for (const PageRun& d : img.pages)
          if ((u128)d.vaddr < end && (u128)r.vaddr < (u128)d.vaddr + (u128)d.nr_pages * kPageSize) return false;
    }
    return true;
  };
  if (!shape(img.pages, false) || !shape(img.inherited, true)) return false;
  u128 sum = 0;
  for (const PageRun& r : img.pages) sum += (u128)r.nr_pages * kPageSize;
  bytes = (uint64_t)sum;
  return true;
}

[[noreturn]] void mismatch(const char* what) {
  std::fprintf(stderr, "image_layout_fuzz: %s\n", what);
  std::abort();
}

void check_uncovered(const Vma& v, const std::vector<std::pair<uint64_t, uint64_t>>& present) {
  auto out = uncovered(v.start, v.end, present);
  u128 total = 0;
  uint64_t prev = v.start;
  for (const auto& [a, b] : out) {
    if (a < prev || b <= a || b > v.end) mismatch("uncovered: a range outside the VMA, empty or out of order");
    for (const auto& [s, e] : present)
      if (s < b && a < e) mismatch("uncovered: a range overlaps a run");
    total += b - a;
    prev = b;
  }
  for (const auto& [s, e] : present) {
    uint64_t lo = std::max(s, v.start), hi = std::min(e, v.end);
    if (lo < hi) total += hi - lo;
  }
  if (total != (u128)(v.end - v.start)) mismatch("uncovered: the runs and the gaps do not make up the VMA");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in{data, size};
  bool raw = in.byte() % 8 == 0;
  TaskImage img;
  size_t nv = in.byte() % 24, np = in.byte() % 24, ni = in.byte() % 24;
  for (size_t i = 0; i < nv; ++i) {
    Vma v;
    v.start = in.value(raw, false);
    v.end = v.start + in.value(raw, false);
    uint8_t k = in.byte();
    v.kind = kKinds[k % 7];
    if (!(k & 0x80)) v.path = "/lib/x";
    img.vmas.push_back(v);
  }
  for (auto [runs, count] : {std::make_pair(&img.pages, np), std::make_pair(&img.inherited, ni)})
    for (size_t i = 0; i < count; ++i) runs->push_back(PageRun{in.value(raw, false), in.value(raw, true)});

  uint64_t want = 0, got = 0;
  bool expect = reference(img, want);
  bool accepted = true;
  try {
    got = check_memory_layout(img);
  } catch (const CoreError& e) {
    accepted = false;
    if (e.code() != "EBOUNDS" && e.code() != "EIMAGE") mismatch("refused with an unexpected code");
  }
  if (accepted != expect) mismatch(accepted ? "accepted an image the reference refuses" : "refused an image the reference accepts");
  if (!accepted) return 0;
  if (got != want) mismatch("pages-file bytes differ from the reference");
#ifdef FUZZ_STATS
  std::fprintf(stderr, "accepted %zu vmas %zu runs %zu inherited\n", img.vmas.size(), img.pages.size(), img.inherited.size());
#endif

  std::vector<std::pair<uint64_t, uint64_t>> present;
  for (const auto* runs : {&img.pages, &img.inherited})
    for (const PageRun& r : *runs) present.push_back({r.vaddr, r.vaddr + r.nr_pages * kPageSize});
  std::sort(present.begin(), present.end());
  for (const Vma& v : img.vmas) check_uncovered(v, present);
  return 0;
}
