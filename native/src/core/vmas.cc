#include "vmas.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <sstream>

#include "errors.h"
#include "files/contents.h"
#include "ipc_namespace.h"
#include "proc.h"
#include "remote_syscall.h"

namespace cryopod {

namespace {

std::string range_name(const SmapsEntry& e) {
  char buf[64];
  snprintf(buf, sizeof buf, "%llx-%llx", (unsigned long long)e.start, (unsigned long long)e.end);
  return buf;
}

int prot_of(const std::string& perms) {
  int p = 0;
  if (perms.size() >= 3) {
    if (perms[0] == 'r') p |= PROT_READ;
    if (perms[1] == 'w') p |= PROT_WRITE;
    if (perms[2] == 'x') p |= PROT_EXEC;
  }
  return p;
}

// VmFlags two-letter codes (fs/proc/task_mmu.c) → the madvise advice that set them.
uint64_t madv_of(const SmapsEntry& e) {
  struct Code { const char* flag; int advice; };
  static const Code codes[] = {{"sr", MADV_SEQUENTIAL}, {"rr", MADV_RANDOM},   {"dc", MADV_DONTFORK},
                               {"hg", MADV_HUGEPAGE},   {"nh", MADV_NOHUGEPAGE}, {"dd", MADV_DONTDUMP},
                               {"wf", MADV_WIPEONFORK}};
  uint64_t m = 0;
  for (const auto& c : codes)
    if (e.has_flag(c.flag)) m |= 1ULL << c.advice;
  return m;
}

// The mode (perms, with SHM_DEST once IPC_RMID-ed) of SysV segment `shmid` of the task's IPC namespace,
// from /proc/sysvipc/shm: "key shmid perms size cpid lpid nattch uid gid ..." with perms in octal.
uint32_t sysv_mode_of(int pid, uint64_t shmid) {
  std::istringstream in(read_sysvipc_shm(pid));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream f(line);
    long long key;
    unsigned long long id;
    std::string perms;
    if (f >> key >> id >> perms && id == shmid) return (uint32_t)std::stoul(perms, nullptr, 8);
  }
  throw CoreError("EPROC", "SysV segment " + std::to_string(shmid) + " is not in /proc/sysvipc/shm");
}

[[noreturn]] void unsupported(int pid, const SmapsEntry& e, const std::string& why) {
  throw CoreError("EUNSUPPORTED", "pid " + std::to_string(pid) + ": mapping " + range_name(e) + " " +
                                      (e.name.empty() ? "(anonymous)" : e.name) + ": " + why);
}

}  // namespace

namespace {
std::vector<Vma> classify(int pid, const std::vector<SmapsEntry>& entries);
}  // namespace

std::vector<Vma> collect_vmas(int pid) { return classify(pid, read_smaps(pid)); }

std::vector<Vma> collect_vmas_fast(int pid, const std::vector<SmapsEntry>& before) {
  std::vector<SmapsEntry> now = read_maps_file(pid, "maps");
  size_t j = 0;
  for (SmapsEntry& e : now) {
    while (j < before.size() && before[j].start < e.start) ++j;
    if (j == before.size() || before[j].start != e.start || before[j].end != e.end || before[j].perms != e.perms ||
        before[j].offset != e.offset || before[j].inode != e.inode)
      return collect_vmas(pid);  // the layout moved since the pre-read: pay for the page walk
    e.vm_flags = before[j].vm_flags;
  }
  return classify(pid, now);
}

namespace {
// A deleted regular file that is mapped: one id per file (dev, inode), its contents read once (through
// the map_files link, which opens the mapped file itself) into the first of its VMAs.
void ghost_of(int pid, const SmapsEntry& e, const std::string& link, const struct stat& st,
              std::map<std::pair<uint64_t, uint64_t>, uint32_t>& ghosts, Vma& v) {
  auto key = std::make_pair((uint64_t)st.st_dev, (uint64_t)st.st_ino);
  auto it = ghosts.find(key);
  if (it != ghosts.end()) {
    v.ghost_id = it->second;
    return;
  }
  if ((uint64_t)st.st_size > kMaxMappedGhostBytes)
    unsupported(pid, e, "the mapped deleted file holds " + std::to_string(st.st_size) + " bytes, over the cap of " +
                            std::to_string(kMaxMappedGhostBytes) + " bytes");
  if (ghosts.size() >= kMaxMappedGhosts) unsupported(pid, e, "more than " + std::to_string(kMaxMappedGhosts) + " mapped deleted files");
  for (int fd : list_fds(pid)) {
    struct stat fst {};
    std::string fdl = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    if (stat(fdl.c_str(), &fst) == 0 && fst.st_dev == st.st_dev && fst.st_ino == st.st_ino)
      unsupported(pid, e, "the mapped deleted file is also open as fd " + std::to_string(fd) + ": a restore would make two files of it");
  }
  int fd = open(link.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", link);
  v.ghost_data = read_contents(fd, (size_t)st.st_size, "pid " + std::to_string(pid) + ": mapped deleted file " + v.name);
  v.ghost_mode = st.st_mode;
  v.ghost_id = (uint32_t)ghosts.size() + 1;
  ghosts[key] = v.ghost_id;
}

std::vector<Vma> classify(int pid, const std::vector<SmapsEntry>& entries) {
  std::vector<Vma> out;
  std::map<std::pair<uint64_t, uint64_t>, uint32_t> ghosts;
  for (const SmapsEntry& e : entries) {
    // [vsyscall] sits at a fixed kernel address in every task: nothing to dump or to restore.
    if (e.name == "[vsyscall]") continue;
    if (e.end >= (1ULL << 53))
      unsupported(pid, e, "address above 2^53 is not supported");
    Vma v;
    v.start = e.start;
    v.end = e.end;
    v.prot = prot_of(e.perms);
    v.name = e.name;
    v.madv = madv_of(e);
    bool shared = e.perms.size() >= 4 && e.perms[3] == 's';
    v.flags = shared ? MAP_SHARED : MAP_PRIVATE;

    if (e.name == "[vdso]") { v.kind = VmaKind::Vdso; out.push_back(v); continue; }
    if (e.name == "[vvar]" || e.name == "[vvar_vclock]") { v.kind = VmaKind::Vvar; out.push_back(v); continue; }

    if (e.has_flag("nl")) unsupported(pid, e, "non-linear mapping (remap_file_pages) cannot be dumped");
    if (e.has_flag("io") || e.has_flag("pf")) unsupported(pid, e, "device (VM_IO/VM_PFNMAP) mapping");

    if (e.inode == 0 && e.name.rfind("/SYSV", 0) != 0) {  // a SysV segment's inode is its id, which may be 0
      if (shared) unsupported(pid, e, "shared anonymous memory is not supported yet");
      v.kind = VmaKind::Anon;
      v.flags |= MAP_ANONYMOUS;
      if (e.has_flag("gd")) v.flags |= MAP_GROWSDOWN;
      out.push_back(v);
      continue;
    }

    // File-backed: map_files names the very file mapped, even if the maps name is ambiguous.
    std::string link = "/proc/" + std::to_string(pid) + "/map_files/" + range_name(e);
    std::string path = read_link(link);
    const std::string deleted = " (deleted)";
    bool gone = path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0;
    if (gone && shared && (path.rfind("/memfd:", 0) == 0 || path.rfind("/dev/zero", 0) == 0)) {
      // MAP_SHARED|MAP_ANONYMOUS ("/dev/zero (deleted)") or a memfd: a shmem object with no name to
      // reopen. Its pages are dumped once per object (shmid = its inode), from its own page cache.
      struct stat st {};
      if (stat(link.c_str(), &st) != 0) throw_errno_at("stat", link);
      v.kind = VmaKind::Shmem;
      v.pgoff = e.offset;
      v.path = path.substr(0, path.size() - deleted.size());
      v.dev = st.st_dev;
      v.inode = st.st_ino;
      v.shmid = st.st_ino;
      v.shm_size = st.st_size;
      out.push_back(v);
      continue;
    }
    if (gone && shared && path.rfind("/SYSV", 0) == 0) {
      // A SysV segment: the inode is its shmid, the name holds its key; its mode comes from
      // /proc/sysvipc/shm. shmat() maps a whole segment, so only whole-segment mappings are restorable.
      struct stat st {};
      if (stat(link.c_str(), &st) != 0) throw_errno_at("stat", link);
      if (e.offset != 0 || e.end - e.start < (uint64_t)st.st_size)
        unsupported(pid, e, "a partial mapping of a SysV shared memory segment");
      v.kind = VmaKind::Shmem;
      v.pgoff = 0;
      v.path = path.substr(0, path.size() - deleted.size());
      v.dev = st.st_dev;
      v.inode = st.st_ino;
      // The object id must not be 0 (the images' "no object"), and a SysV id may be: bit 32 marks it.
      v.shmid = kSysvShmidBit | st.st_ino;
      v.shm_size = st.st_size;
      v.sysv_mode = sysv_mode_of(pid, st.st_ino);
      out.push_back(v);
      continue;
    }
    struct stat st {};
    if (stat(link.c_str(), &st) != 0) throw_errno_at("stat", link);
    if (!S_ISREG(st.st_mode)) unsupported(pid, e, "mapping of a non-regular file");
    if (gone && st.st_nlink != 0) {
      // Still linked: a file whose name really ends in " (deleted)", or one unlinked here but linked
      // elsewhere, whose other name is not looked for.
      struct stat named {};
      if (stat(("/proc/" + std::to_string(pid) + "/root" + path).c_str(), &named) != 0 || named.st_ino != st.st_ino || named.st_dev != st.st_dev)
        unsupported(pid, e, "the mapped file was deleted at this path but has another link");
      gone = false;
    }
    if (gone) {
      path.resize(path.size() - deleted.size());
      ghost_of(pid, e, link, st, ghosts, v);
    }
    v.kind = shared ? VmaKind::FileShared : VmaKind::FilePrivate;
    v.pgoff = e.offset;
    v.path = path;
    v.dev = st.st_dev;
    v.inode = st.st_ino;
    out.push_back(v);
  }
  return out;
}
}  // namespace

uint64_t find_vdso_syscall(int pid, const std::vector<Vma>& vmas) {
  for (const Vma& v : vmas) {
    if (v.kind != VmaKind::Vdso) continue;
    std::vector<uint8_t> code(v.length());
    remote_mem_read(pid, v.start, code.data(), code.size());
    long off = find_syscall_bytes(code);
    if (off < 0) break;
    return v.start + off;
  }
  throw CoreError("EUNSUPPORTED", "pid " + std::to_string(pid) + " has no vDSO with a syscall instruction");
}

}  // namespace cryopod
