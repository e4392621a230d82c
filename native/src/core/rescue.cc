#include "rescue.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "../../parasite/protocol.h"
#include "dump_steps.h"
#include "errors.h"
#include "proc.h"
#include "remote_syscall.h"
#include "seized_task.h"
#include "vdso_park.h"

namespace cryopod {

namespace {

using Clock = std::chrono::steady_clock;

bool exists(int pid) { return kill(pid, 0) == 0 || errno == EPERM; }

void wait_untraced(int pid, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int tracer = read_status(pid).tracer_pid;
    if (tracer == 0) return;
    if (Clock::now() > deadline)
      throw CoreError("EBUSY", "pid " + std::to_string(pid) + " is still traced by pid " + std::to_string(tracer) +
                                   ": its dumper is alive, or another rescue runs");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct Area {
  uint64_t start = 0;
  parasite_rescue record{};
};

bool valid_record(const parasite_rescue& r, int pid) {
  return r.magic == PARASITE_RESCUE_MAGIC && r.pid == pid && r.xsave_len <= PARASITE_XSAVE_MAX &&
         r.nr_fds <= PARASITE_RESCUE_MAX_FDS && r.nr_threads <= PARASITE_RESCUE_MAX_THREADS;
}

// The parasite's area, if the task still maps one holding our rescue record for this very task; or,
// when the dumper died between the memfd's creation and its mapping in the task, the memfd alone (start
// 0), whose record the dumper had written through /proc/PID/fd.
std::unique_ptr<Area> find_area(int pid) {
  for (const SmapsEntry& e : read_maps_file(pid, "maps")) {
    if (e.end - e.start != PARASITE_AREA_SIZE || e.name.rfind("/memfd:cryopod-parasite", 0) != 0) continue;
    auto a = std::make_unique<Area>();
    a->start = e.start;
    remote_mem_read(pid, e.start + PARASITE_RESCUE_OFF, &a->record, sizeof a->record);
    if (valid_record(a->record, pid)) return a;
  }
  for (int fd : list_fds(pid)) {
    std::string at = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    try {
      if (read_link(at).rfind("/memfd:cryopod-parasite", 0) != 0) continue;
    } catch (const CoreError&) {
      continue;
    }
    int f = open(at.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) continue;
    auto a = std::make_unique<Area>();
    ssize_t n = pread(f, &a->record, sizeof a->record, PARASITE_RESCUE_OFF);
    close(f);
    if (n == (ssize_t)sizeof a->record && valid_record(a->record, pid)) return a;
  }
  return nullptr;
}

uint64_t vdso_gadget(int pid) {
  for (const SmapsEntry& e : read_maps_file(pid, "maps")) {
    if (e.name != "[vdso]") continue;
    std::vector<uint8_t> code(e.end - e.start);
    remote_mem_read(pid, e.start, code.data(), code.size());
    long off = find_syscall_bytes(code);
    if (off >= 0) return e.start + (uint64_t)off;
  }
  throw CoreError("EUNSUPPORTED", "pid " + std::to_string(pid) + " has no vDSO with a syscall instruction");
}

// Whether the task may be on our vDSO park (vdso_park.h), to look at once seized: the park's code is in
// its vDSO's padding, and /proc/PID/syscall ("<nr> <6 args> <sp> <pc>", or "running" in user mode) shows
// it in a system call made there. A task the dead dumper just let go may still be on its way in.
bool maybe_in_vdso_park(int pid) {
  uint64_t end = 0;
  for (const SmapsEntry& e : read_maps_file(pid, "maps"))
    if (e.name == "[vdso]") end = e.end;
  if (end == 0) return false;
  uint8_t code[2] = {};
  remote_mem_read(pid, end - 16, code, sizeof code);
  if (code[0] != 0x0f || code[1] != 0x05) return false;  // not armed: padding is zeros
  for (int tries = 0; tries < 200; ++tries) {
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/syscall"));
    std::vector<std::string> f;
    std::string tok;
    while (in >> tok) f.push_back(tok);
    if (f.size() == 9) {
      uint64_t pc = std::stoull(f[8], nullptr, 16);
      return pc >= end - 16 && pc < end;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // "running": look again
  }
  return false;
}

struct Child {
  int pid = 0, ns_pid = 0;
  char state = '?';
  uint64_t start = 0;
};

// Children the task cannot see exit: exit signal 0 (/proc/PID/stat field 38), as the parasite forks
// its snapshot; started no earlier than `since`.
std::vector<Child> silent_children(int pid, uint64_t since) {
  std::vector<Child> out;
  for (int tid : list_tasks(pid)) {
    std::string text;
    try {
      text = read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/children");
    } catch (const CoreError&) {
      continue;
    }
    std::istringstream in(text);
    int c;
    while (in >> c) {
      try {
        std::string stat = read_text("/proc/" + std::to_string(c) + "/stat");
        std::istringstream f(stat.substr(stat.rfind(')') + 2));
        std::vector<std::string> fields;  // fields[0] is field 3
        std::string tok;
        while (f >> tok) fields.push_back(tok);
        if (fields.size() < 36 || std::stoi(fields[35]) != 0) continue;  // field 38: exit signal
        Child ch{c, 0, fields[0][0], std::stoull(fields[19])};            // field 22: start time
        if (ch.start < since) continue;
        std::vector<int> ids = read_status(c).ns_pid;
        ch.ns_pid = ids.empty() ? c : ids.back();
        out.push_back(ch);
      } catch (...) {
      }
    }
  }
  return out;
}

// A snapshot child exits by itself once its socket's far end (the dumper) is gone: wait for that; the
// one the record names is killed if it has not within 2 s (its start time proves it is still that
// process). Returns the zombies, to reap; a live child of that kind that is not ours is left alone.
std::vector<Child> settled_children(int pid, uint64_t since, const parasite_rescue* rec) {
  auto deadline = Clock::now() + std::chrono::milliseconds(2000);
  bool killed = false;
  for (;;) {
    std::vector<Child> kids = silent_children(pid, since), zombies;
    for (const Child& k : kids)
      if (k.state == 'Z') zombies.push_back(k);
    if (zombies.size() == kids.size()) return zombies;
    if (Clock::now() > deadline) {
      if (killed) return zombies;
      for (const Child& k : kids)
        if (k.state != 'Z' && rec && rec->child_pid == k.pid && rec->child_start == k.start) kill(k.pid, SIGKILL);
      killed = true;
      deadline = Clock::now() + std::chrono::milliseconds(1000);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// The task's other threads, seized, each given back what the record holds for it: parked in the area
// (its last remote syscall ran on the area's gadget), its registers and mask as seized; elsewhere only
// its mask, which its remote syscalls had blocked. A thread the record does not name is left as it is.
std::vector<std::unique_ptr<SeizedTask>> put_back_threads(int pid, const Area& area, int& restored) {
  std::vector<std::unique_ptr<SeizedTask>> out;
  const parasite_rescue& rec = area.record;
  for (int tid : list_tasks(pid)) {
    if (tid == pid) continue;
    const parasite_rescue_thread* slot = nullptr;
    for (uint32_t i = 0; i < rec.nr_threads; ++i)
      if (rec.threads[i].tid == tid) slot = &rec.threads[i];
    if (!slot) continue;
    auto th = std::make_unique<SeizedTask>(tid);
    user_regs_struct now = th->regs();
    bool parked = area.start != 0 && now.rip >= area.start && now.rip < area.start + PARASITE_AREA_SIZE;
    user_regs_struct saved{};
    std::memcpy(&saved, slot->regs, sizeof saved);
    th->adopt_original(parked ? saved : th->original_regs(), slot->sigmask);
    if (parked) ++restored;
    out.push_back(std::move(th));
  }
  return out;
}

bool is_ours(const std::string& link, const parasite_rescue& rec) {
  if (link.rfind("/memfd:cryopod-parasite", 0) == 0) return true;
  for (uint32_t i = 0; i < rec.nr_fds; ++i) {
    const parasite_rescue_fd& f = rec.fds[i];
    std::string want = std::string(f.pad == 1 ? "socket:[" : "pipe:[") + std::to_string(f.ino) + "]";
    if (link == want) return true;
  }
  return false;
}

}  // namespace

namespace {

RescueReport rescue_once(const RescueRequest& req) {
  RescueReport rep;
  int pid = req.pid;
  if (!exists(pid)) return RescueReport{true};
  try {
    wait_untraced(pid, req.untraced_timeout_ms);
    char state_before = read_status(pid).state;
    std::unique_ptr<Area> area = find_area(pid);
    rep.infected = area != nullptr;
    std::vector<Child> zombies = settled_children(pid, req.children_since, area ? &area->record : nullptr);
    bool vdso_parked = false;
    try {
      vdso_parked = maybe_in_vdso_park(pid);
    } catch (const CoreError&) {
    }
    if (area || !zombies.empty() || vdso_parked) {
      SeizedTask task(pid);
      uint64_t vdso = vdso_gadget(pid);
      std::vector<std::unique_ptr<SeizedTask>> threads;  // let go with the main thread, once the area is gone
      // Parked on the vDSO park (a remote syscall the area could not take): its own registers and mask
      // are in the note below its stack.
      std::unique_ptr<VdsoParkNote> note = vdso_parked ? parked_in_vdso(task) : nullptr;
      if (note) {
        user_regs_struct saved{};
        std::memcpy(&saved, note->regs, sizeof saved);
        task.adopt_original(saved, note->sigmask);
        rep.registers_restored = true;
        if (!area) {
          RemoteSyscalls rs(task, vdso);
          for (int fd : list_fds(pid)) {
            try {
              if (read_link("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd)).rfind("/memfd:cryopod-parasite", 0) == 0 &&
                  rs.call(SYS_close, (uint64_t)fd) == 0)
                ++rep.fds_closed;
            } catch (const CoreError&) {
            }
          }
        }
      }
      if (area) {
        threads = put_back_threads(pid, *area, rep.threads_restored);
        const parasite_rescue& rec = area->record;
        user_regs_struct now = task.regs();
        user_regs_struct saved{};
        std::memcpy(&saved, rec.regs, sizeof saved);
        bool in_area = area->start != 0 && now.rip >= area->start && now.rip < area->start + PARASITE_AREA_SIZE;
        rep.registers_restored = rep.registers_restored || in_area;
        // Parked in the area: the registers and mask are the dumper's; put the task's own back. Anywhere
        // else the registers are the task's (the blob never ran, or was already cured), or the vDSO
        // park's note gave them: only the mask, which every remote syscall had blocked.
        if (!note) task.adopt_original(in_area ? saved : task.original_regs(), rec.sigmask);
        RemoteSyscalls rs(task, area->start ? area->start + PARASITE_GADGET_OFF : vdso);
        for (int fd : list_fds(pid)) {
          std::string link;
          try {
            link = read_link("/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd));
          } catch (const CoreError&) {
            continue;
          }
          if (is_ours(link, rec) && rs.call(SYS_close, (uint64_t)fd) == 0) ++rep.fds_closed;
        }
        for (const Child& z : zombies)
          if (rs.call(SYS_wait4, (uint64_t)z.ns_pid, 0, WNOHANG | __WALL, 0) > 0) ++rep.children_reaped;
        rs.set_gadget(vdso);
        if (area->start) rs.must("munmap parasite area", SYS_munmap, area->start, PARASITE_AREA_SIZE);
        if (in_area && rec.xsave_len > 0)
          task.set_xsave(std::vector<uint8_t>(rec.xsave, rec.xsave + rec.xsave_len));
      } else {
        RemoteSyscalls rs(task, vdso);
        for (const Child& z : zombies)
          if (rs.call(SYS_wait4, (uint64_t)z.ns_pid, 0, WNOHANG | __WALL, 0) > 0) ++rep.children_reaped;
      }
      if (note) clear_vdso_park(pid, note->gadget);
      for (auto& th : threads) th->detach();
      task.detach();
    }
    if (req.resume_stopped && (state_before == 'T' || read_status(pid).state == 'T')) {
      rep.resumed = kill(pid, SIGCONT) == 0;
    }
  } catch (const CoreError& e) {
    if (!exists(pid) || e.code() == "ESRCH") return RescueReport{true};
    throw;
  }
  return rep;
}

}  // namespace

RescueReport rescue_task(const RescueRequest& req) {
  for (int attempt = 0;; ++attempt) {
    try {
      return rescue_once(req);
    } catch (const CoreError& e) {
      // Another rescuer (the guard, an agent's recovery) seized it between our checks: once it has
      // detached, look again: what it put back is no longer there to find.
      if (e.code() != "EPERM" || attempt >= 5) throw;
    }
  }
}

}  // namespace cryopod
