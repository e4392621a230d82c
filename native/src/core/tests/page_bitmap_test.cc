// Property test of the page bitmap against a simple oracle (after Firecracker's dump_dirty tests):
// random VMAs and random pagemap entries; the runs built page by page with append_page must equal the
// oracle's maximal runs of dumped pages that never cross a VMA boundary, and page_must_be_dumped must
// agree with a direct reading of the pagemap bits. Exit status 0 = pass.
#include <cstdio>
#include <random>
#include <vector>

#include "../page_bitmap.h"

using namespace cryopod;

static int failures = 0;
#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) {                        \
      std::fprintf(stderr, __VA_ARGS__);  \
      std::fprintf(stderr, "\n");         \
      ++failures;                         \
    }                                     \
  } while (0)

static bool oracle_dump(VmaKind kind, uint64_t e, uint64_t zero_pfn) {
  bool present = e >> 63 & 1, swapped = e >> 62 & 1, file = e >> 61 & 1;
  uint64_t pfn = e & ((1ULL << 55) - 1);
  if (kind == VmaKind::FileShared || kind == VmaKind::Vdso || kind == VmaKind::Vvar) return false;
  if (swapped) return true;
  return present && !file && !(zero_pfn && pfn == zero_pfn);
}

int main() {
  std::mt19937_64 rng(42);
  const uint64_t zero_pfn = 0x1234;
  const VmaKind kinds[] = {VmaKind::Anon, VmaKind::FilePrivate, VmaKind::FileShared, VmaKind::Vdso};
  for (int iter = 0; iter < 2000; ++iter) {
    // Adjacent VMAs (no gaps sometimes, gaps other times) to catch runs merged across a boundary.
    std::vector<Vma> vmas;
    uint64_t addr = 0x400000;
    int nv = 1 + rng() % 6;
    for (int i = 0; i < nv; ++i) {
      Vma v;
      v.start = addr;
      v.end = addr + (1 + rng() % 20) * kPageSize;
      v.kind = kinds[rng() % 4];
      vmas.push_back(v);
      addr = v.end + (rng() % 2) * kPageSize;
    }
    std::vector<PageRun> runs;
    std::vector<std::vector<uint64_t>> oracle_pages;  // per VMA, dumped page addresses
    for (const Vma& v : vmas) {
      size_t first = runs.size();
      oracle_pages.emplace_back();
      for (uint64_t a = v.start; a < v.end; a += kPageSize) {
        uint64_t e = 0;
        switch (rng() % 5) {
          case 0: e = 0; break;                                         // untouched
          case 1: e = (1ULL << 63) | (rng() % 100000 + 1); break;      // present anon
          case 2: e = (1ULL << 63) | (1ULL << 61) | 77; break;          // page cache
          case 3: e = (1ULL << 63) | zero_pfn; break;                   // zero page
          case 4: e = (1ULL << 62) | 5; break;                          // swapped
        }
        bool got = page_must_be_dumped(v, e, zero_pfn);
        bool want = oracle_dump(v.kind, e, zero_pfn);
        CHECK(got == want, "iter %d: page %llx entry %llx: got %d want %d", iter, (unsigned long long)a,
              (unsigned long long)e, got, want);
        if (got) {
          append_page(runs, a, first);
          oracle_pages.back().push_back(a);
        }
      }
    }
    // Oracle runs: split each VMA's page list at gaps.
    std::vector<PageRun> want;
    for (const auto& pages : oracle_pages)
      for (size_t i = 0; i < pages.size(); ++i) {
        if (i > 0 && pages[i] == pages[i - 1] + kPageSize)
          want.back().nr_pages++;
        else
          want.push_back(PageRun{pages[i], 1});
      }
    CHECK(runs.size() == want.size(), "iter %d: %zu runs, oracle %zu", iter, runs.size(), want.size());
    for (size_t i = 0; i < runs.size() && i < want.size(); ++i)
      CHECK(runs[i].vaddr == want[i].vaddr && runs[i].nr_pages == want[i].nr_pages, "iter %d: run %zu differs", iter, i);
    if (failures > 20) break;
  }
  std::printf("page_bitmap_test: %s (%d failures)\n", failures ? "FAIL" : "PASS", failures);
  return failures ? 1 : 0;
}
