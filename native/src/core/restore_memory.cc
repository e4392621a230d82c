// The address space half of a restore: clear what the task must not keep (all of a fresh stub; what a
// task forked from its restored parent did not inherit), move the vDSO into place, map every saved VMA
// (files by path from inside the task, shared memory objects, SysV segments), fill the pages, and set
// the final protections and advice.
#include <fcntl.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "files/contents.h"
#include "image_checks.h"
#include "ipc_namespace.h"
#include "page_bitmap.h"
#include "page_copy.h"
#include "proc.h"
#include "restore.h"
#include "restore_morph.h"
#include "lazy_pager.h"
#include "uffd_fill.h"
#include "vmas.h"

namespace cryopod {

namespace {

bool overlaps(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return a < d && c < b; }

}  // namespace

uint64_t find_free_range(uint64_t len, const std::vector<std::pair<uint64_t, uint64_t>>& taken) {
  for (uint64_t cand = 0x10000000ULL; cand < 0x7f0000000000ULL; cand += 0x40000000ULL) {
    bool ok = true;
    for (const auto& t : taken)
      if (overlaps(cand, cand + len, t.first, t.second)) ok = false;
    if (ok) return cand;
  }
  throw CoreError("ENOMEM", "no free address range for " + std::to_string(len) + " bytes");
}

namespace {


// Moves the stub's [vvar], [vvar_vclock] and [vdso] to the saved addresses, through a free area first
// so a target that overlaps the current place is never clobbered. Returns the gadget's new address.
uint64_t move_vdso(RemoteSyscalls& rs, const std::vector<Vma>& stub_vmas, const TaskImage& img, uint64_t gadget) {
  std::map<std::string, const Vma*> now, want;
  for (const Vma& v : stub_vmas)
    if (v.kind == VmaKind::Vdso || v.kind == VmaKind::Vvar) now[v.name] = &v;
  for (const Vma& v : img.vmas)
    if (v.kind == VmaKind::Vdso || v.kind == VmaKind::Vvar) want[v.name] = &v;
  if (now.size() != want.size())
    throw CoreError("EVDSO", "the saved vDSO area has " + std::to_string(want.size()) + " parts, this kernel's has " +
                                 std::to_string(now.size()) + ": images from another kernel are not supported yet");
  const Vma* vdso_now = now.count("[vdso]") ? now["[vdso]"] : nullptr;
  const Vma* vdso_want = want.count("[vdso]") ? want["[vdso]"] : nullptr;
  if (!vdso_now || !vdso_want) throw CoreError("EVDSO", "no [vdso] in the image or in the stub");
  for (auto& [name, v] : now) {
    if (!want.count(name) || want[name]->length() != v->length())
      throw CoreError("EVDSO", name + " differs in size from this kernel's: images from another kernel are not supported yet");
    // The vDSO code finds vvar at fixed offsets: the saved layout must be this kernel's.
    if ((int64_t)(want[name]->start - vdso_want->start) != (int64_t)(v->start - vdso_now->start))
      throw CoreError("EVDSO", "the saved vDSO layout differs from this kernel's");
  }
  uint64_t lo = UINT64_MAX, hi = 0;
  for (auto& [name, v] : now) {
    lo = std::min(lo, v->start);
    hi = std::max(hi, v->end);
  }
  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const Vma& v : img.vmas) taken.push_back({v.start, v.end});
  for (const Vma& v : stub_vmas) taken.push_back({v.start, v.end});
  uint64_t tmp = find_free_range(hi - lo, taken);
  uint64_t off = gadget - vdso_now->start;

  auto move_all = [&](auto target_of) {
    // The vDSO itself goes last: the gadget we run mremap from lives in it.
    std::vector<const Vma*> order;
    for (auto& [name, v] : now)
      if (name != "[vdso]") order.push_back(v);
    order.push_back(vdso_now);
    for (const Vma* v : order) {
      uint64_t to = target_of(v);
      rs.must("mremap " + v->name, SYS_mremap, v->start, v->length(), v->length(), MREMAP_MAYMOVE | MREMAP_FIXED, to);
    }
  };
  std::map<std::string, uint64_t> at_tmp;
  move_all([&](const Vma* v) { return at_tmp[v->name] = tmp + (v->start - lo); });
  rs.set_gadget(at_tmp["[vdso]"] + off);
  std::vector<Vma> moved;
  for (auto& [name, v] : now) {
    Vma m = *v;
    m.start = at_tmp[name];
    m.end = m.start + v->length();
    moved.push_back(m);
  }
  now.clear();
  for (const Vma& m : moved) now[m.name] = &m;
  vdso_now = now["[vdso]"];
  move_all([&](const Vma* v) { return want[v->name]->start; });
  return vdso_want->start + off;
}

// A mapping the task inherited from its restored parent that is the image's very VMA: kept, so the
// pages it shares with the parent (copy-on-write, or shared memory) stay shared.
bool same_vma(const Vma& now, const Vma& want) {
  if (now.start != want.start || now.end != want.end || now.kind != want.kind) return false;
  switch (want.kind) {
    case VmaKind::Anon: return true;
    case VmaKind::FilePrivate:
    case VmaKind::FileShared: return now.path == want.path && now.pgoff == want.pgoff;
    case VmaKind::Shmem: return now.pgoff == want.pgoff;  // the parent's object: the shmid is the parent's new one
    default: return false;
  }
}

// Unmaps what the task must not keep: for a fresh stub, all of it but the vDSO area; for a task forked
// from its restored parent, what is not the image's (returns the image VMAs it keeps).
std::set<uint64_t> clear_address_space(RemoteSyscalls& rs, const std::vector<Vma>& now, const TaskImage& img, bool inherit) {
  std::set<uint64_t> kept;
  for (const Vma& v : now) {
    if (v.is_special()) continue;
    // img.vmas are sorted by start (check_memory_layout): one lookup, not a scan per mapping.
    bool keep = false;
    if (inherit) {
      auto w = std::lower_bound(img.vmas.begin(), img.vmas.end(), v.start, [](const Vma& a, uint64_t s) { return a.start < s; });
      keep = w != img.vmas.end() && same_vma(v, *w);
    }
    if (keep)
      kept.insert(v.start);
    else
      rs.must("munmap " + v.name, SYS_munmap, v.start, v.length());
  }
  return kept;
}

// A SysV segment again: with its key and mode, and its shmid kept (kernel.shm_next_id in the task's IPC
// namespace), attached at each saved address; removed again (IPC_RMID) if it had been, so it goes when
// its last user detaches.
void map_sysv(Morph& m, const std::vector<const Vma*>& vmas) {
  const Vma& first = *vmas.front();
  long key = std::strtol(first.path.c_str() + 5, nullptr, 16);
  uint64_t shmid = first.shmid & ~kSysvShmidBit;
  set_shm_next_id(m.task().pid(), shmid);
  long id = m.rs().call(SYS_shmget, (uint64_t)key, first.shm_size, IPC_CREAT | IPC_EXCL | (first.sysv_mode & 0777));
  if (id == -EEXIST) {
    // SysV segments outlive their processes: the very segment the dump left behind (same id and size,
    // attached nowhere) is taken back and refilled; one in use is someone's, not ours.
    id = m.rs().call(SYS_shmget, (uint64_t)key, first.shm_size, 0);
    struct shmid_ds ds {};
    bool ours = id >= 0 && (uint64_t)id == shmid && m.rs().call(SYS_shmctl, (uint64_t)id, IPC_STAT, m.scratch() + 8192) == 0;
    if (ours) {
      remote_read(m.task().pid(), m.scratch() + 8192, &ds, sizeof ds);
      ours = ds.shm_nattch == 0 && ds.shm_segsz == first.shm_size;
    }
    if (!ours)
      throw CoreError("EEXIST", "SysV shared memory key " + first.path.substr(5) +
                                    " is in use (is the checkpointed process still running?)");
  }
  if (id < 0) throw_errno("in the restored task: shmget " + first.path, (int)-id);
  if ((uint64_t)id != shmid)
    throw CoreError("ESHMID", "SysV segment " + first.path + " came back as shmid " + std::to_string(id) + ", not " +
                                  std::to_string(shmid));
  for (const Vma* v : vmas) {
    long r = m.rs().call(SYS_shmat, (uint64_t)id, v->start, (v->prot & PROT_WRITE) ? 0 : SHM_RDONLY);
    if (r < 0 && r > -4096) throw_errno("in the restored task: shmat " + v->path, (int)-r);
  }
  if (first.sysv_mode & SHM_DEST) m.rs().call(SYS_shmctl, (uint64_t)id, IPC_RMID, 0);
}

// Creates the shared memory objects this task maps first: a memfd per object (named as saved), or plain
// MAP_SHARED|MAP_ANONYMOUS for a /dev/zero object mapped once from offset 0 (so maps reads the same).
void map_shmem(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  std::map<uint64_t, std::vector<const Vma*>> objects;
  for (const Vma& v : img.vmas)
    if (v.kind == VmaKind::Shmem && !kept.count(v.start)) objects[v.shmid].push_back(&v);
  for (const auto& [shmid, vmas] : objects) {
    const Vma& first = *vmas.front();
    int prot_all = PROT_READ | PROT_WRITE;
    if (first.path.rfind("/SYSV", 0) == 0) {
      map_sysv(m, vmas);
      continue;
    }
    if (vmas.size() == 1 && first.pgoff == 0 && first.path == "/dev/zero") {
      m.rs().must("mmap shared anonymous", SYS_mmap, first.start, first.length(), prot_all | first.prot,
                  MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, (uint64_t)-1, 0);
      continue;
    }
    std::string name = first.path.rfind("/memfd:", 0) == 0 ? first.path.substr(7) : "shmem";
    long fd = m.rs().must("memfd_create " + name, SYS_memfd_create, m.put_string(0, name), 0);
    try {
      m.rs().must("ftruncate memfd", SYS_ftruncate, (uint64_t)fd, first.shm_size);
      for (const Vma* v : vmas)
        m.rs().must("mmap memfd " + name, SYS_mmap, v->start, v->length(), prot_all | v->prot, MAP_SHARED | MAP_FIXED,
                    (uint64_t)fd, v->pgoff);
    } catch (...) {
      m.rs().call(SYS_close, (uint64_t)fd);
      throw;
    }
    m.rs().call(SYS_close, (uint64_t)fd);
  }
}

// The mapped deleted files of a restore: each re-created from the contents its first VMA carries (at its
// old path, or beside it when a new file took that path), mapped by every VMA of it, then unlinked
// again, so that /proc shows "<path> (deleted)" as before. The destructor unlinks and closes them
// whatever happened, so a failed restore leaves no file behind.
class MappedGhosts {
 public:
  explicit MappedGhosts(Morph& m) : m_(m) {}
  ~MappedGhosts() {
    for (auto& [id, g] : made_) {
      try {
        m_.rs().call(SYS_unlinkat, (uint64_t)AT_FDCWD, m_.put_string(0, g.path), 0);
        m_.rs().call(SYS_close, (uint64_t)g.fd);
      } catch (const std::exception&) {
        // The stub is gone (it is killed on any failure): nothing left to close; try the path from here.
        unlink(("/proc/" + std::to_string(m_.task().pid()) + "/root" + g.path).c_str());
      }
    }
  }
  long fd_for(const Vma& v) {
    auto it = made_.find(v.ghost_id);
    if (it != made_.end()) return it->second.fd;
    std::string path = v.path;
    long fd = create(path, v);
    if (fd == -EEXIST) fd = create(path += ".cryopod-ghost-map-" + std::to_string(v.ghost_id), v);
    if (fd < 0) throw_errno("in the restored task: create the ghost " + path + " of mapping " + v.name, (int)-fd);
    made_[v.ghost_id] = {fd, path};
    write_contents(m_.task().pid(), fd, v.ghost_data, "the ghost of mapping " + v.name);
    return fd;
  }

 private:
  long create(const std::string& path, const Vma& v) {
    return m_.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m_.put_string(0, path), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, v.ghost_mode & 07777);
  }
  struct Made {
    long fd;
    std::string path;
  };
  Morph& m_;
  std::map<uint32_t, Made> made_;
};

void map_vmas(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  map_shmem(m, img, kept);
  MappedGhosts ghosts(m);
  for (const Vma& v : img.vmas) {
    if (v.is_special() || v.kind == VmaKind::Shmem) continue;
    // Pages are written after mapping: private mappings start writable and get their final prot later.
    int prot = v.prot | ((v.kind == VmaKind::FileShared) ? 0 : PROT_READ | PROT_WRITE);
    if (kept.count(v.start)) {
      if (v.kind != VmaKind::FileShared) m.rs().must("mprotect " + v.name, SYS_mprotect, v.start, v.length(), prot);
      continue;
    }
    if (v.kind == VmaKind::Anon) {
      int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (v.flags & MAP_GROWSDOWN);
      m.rs().must("mmap anonymous " + v.name, SYS_mmap, v.start, v.length(), prot, flags, (uint64_t)-1, 0);
      continue;
    }
    long fd = -1;
    if (v.ghost_id != 0) {
      fd = ghosts.fd_for(v);
    } else {
      int oflags = (v.kind == VmaKind::FileShared && (v.prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
      fd = m.rs().call(SYS_openat, (uint64_t)AT_FDCWD, m.put_string(0, v.path), oflags | O_CLOEXEC, 0);
      if (fd < 0) throw_errno("in the restored task: open " + v.path + " to map it", (int)-fd);
    }
    int flags = (v.kind == VmaKind::FileShared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED;
    long r = m.rs().call(SYS_mmap, v.start, v.length(), prot, flags, (uint64_t)fd, v.pgoff);
    if (v.ghost_id == 0) m.rs().call(SYS_close, (uint64_t)fd);
    if (r < 0 && r > -4096) throw_errno("in the restored task: mmap " + v.path, (int)-r);
  }
}

// In a private VMA kept from the parent, a page that is neither still shared with the parent
// (inherited) nor the task's own (dumped) was empty in the task: drop the parent's copy. Worked on the
// runs as ranges, never page by page: an image may claim a run of millions of pages (a 16 GiB VMA), and
// the restorer's memory must not grow with what an image claims (only with what it holds).
void drop_foreign_pages(Morph& m, const TaskImage& img, const std::set<uint64_t>& kept) {
  std::vector<std::pair<uint64_t, uint64_t>> present;  // [start, end) of every run, sorted
  present.reserve(img.pages.size() + img.inherited.size());
  for (const auto* runs : {&img.pages, &img.inherited})
    for (const PageRun& r : *runs) present.push_back({r.vaddr, r.vaddr + r.nr_pages * kPageSize});
  std::sort(present.begin(), present.end());
  for (const Vma& v : img.vmas) {
    if (!kept.count(v.start) || (v.kind != VmaKind::Anon && v.kind != VmaKind::FilePrivate)) continue;
    for (const auto& [from, to] : uncovered(v.start, v.end, present))
      m.rs().must("madvise(DONTNEED)", SYS_madvise, from, to - from, MADV_DONTNEED);
  }
}

void finish_vmas(Morph& m, const TaskImage& img) {
  for (const Vma& v : img.vmas) {
    if (v.is_special()) continue;
    if (v.kind != VmaKind::FileShared)
      m.rs().must("mprotect " + v.name, SYS_mprotect, v.start, v.length(), v.prot);
    for (int advice = 0; advice < 64; ++advice)
      if (v.madv & (1ULL << advice)) m.rs().call(SYS_madvise, v.start, v.length(), advice);
  }
}

}  // namespace

void morph_memory(MorphContext& c, SeizedTask& task, const TaskImage& img, const std::string& pages_path,
                  PagesVerification* verify, bool inherit) {
  std::vector<Vma> now = collect_vmas(task.pid());
  c.rs = std::make_unique<RemoteSyscalls>(task, find_vdso_syscall(task.pid(), now));
  c.morph = std::make_unique<Morph>(task, *c.rs);
  Morph& m = *c.morph;
  RemoteSyscalls& rs = *c.rs;

  std::set<uint64_t> kept = clear_address_space(rs, now, img, inherit);
  rs.set_gadget(move_vdso(rs, now, img, rs.gadget()));

  std::vector<std::pair<uint64_t, uint64_t>> taken;
  for (const Vma& v : img.vmas) taken.push_back({v.start, v.end});
  uint64_t want = find_free_range(kScratchSize, taken);
  long scratch = rs.must("mmap scratch", SYS_mmap, want, kScratchSize, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0);
  m.set_scratch((uint64_t)scratch);
  c.scratch = (uint64_t)scratch;

  map_vmas(m, img, kept);
  if (inherit) drop_foreign_pages(m, img, kept);
  {
    // Fresh anonymous memory is filled through the stub's userfaultfd (no zeroing before the copy:
    // uffd_fill.h). Not in a forked child, whose VMAs may hold its parent's pages already.
    // CRYOPOD_FILL_UFFD=0 (benchmarks: the A/B) writes everything with process_vm_writev.
    // A lazy restore (lazy_pager.h) serves them on fault instead, from a pager that outlives this call.
    if (!(c.lazy && !inherit && start_lazy(m, img, pages_path, verify, *c.lazy))) {
      const char* knob = std::getenv("CRYOPOD_FILL_UFFD");
      StubUffd uffd = inherit || (knob && std::string(knob) == "0") ? StubUffd() : StubUffd::open(m, img.vmas, img.pages);
      fill_pages(task.pid(), img.pages, pages_path, verify, &uffd);
    }
  }  // closed here (eager): the stub's ranges are unregistered before anything else runs in it
  finish_vmas(m, img);
}

}  // namespace cryopod
