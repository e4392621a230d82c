#include "vdso_park.h"

#include <fcntl.h>
#include <sys/user.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "errors.h"
#include "proc.h"
#include "remote_syscall.h"

namespace cryopod {

namespace {

const uint8_t kParkCode[kVdsoParkLen] = {0x0f, 0x05, 0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7};

// /proc/PID/mem, which writes through a read-only executable mapping (FOLL_FORCE, copy-on-write).
bool mem_write(int pid, uint64_t addr, const void* buf, size_t len) {
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = pwrite(fd, buf, len, (off_t)addr) == (ssize_t)len;
  close(fd);
  return ok;
}

uint64_t vdso_end(int pid) {
  for (const SmapsEntry& e : read_maps_file(pid, "maps"))
    if (e.name == "[vdso]") return e.end;
  return 0;
}

}  // namespace

uint64_t vdso_park_note_at(uint64_t rsp) { return ((rsp - 1024) & ~15ULL); }

VdsoPark::VdsoPark(SeizedTask& task) : pid_(task.pid()) {
  try {
    uint64_t end = vdso_end(pid_);
    if (end == 0) return;
    uint64_t at = end - 16;  // 16-byte aligned, the code in its first 11
    uint8_t tail[16];
    remote_mem_read(pid_, at, tail, sizeof tail);
    for (uint8_t b : tail)
      if (b != 0 && std::memcmp(tail, kParkCode, kVdsoParkLen) != 0) return;  // not padding (nor our park)
    VdsoParkNote note{};
    note.magic = kVdsoParkMagic;
    note.pid = pid_;
    note.gadget = at;
    note.sigmask = task.original_sigmask();
    const user_regs_struct& regs = task.original_regs();
    static_assert(sizeof regs == sizeof note.regs, "user_regs_struct layout");
    std::memcpy(note.regs, &regs, sizeof regs);
    remote_write(pid_, vdso_park_note_at(regs.rsp), &note, sizeof note);  // its stack: must be mapped there
    if (!mem_write(pid_, at, kParkCode, kVdsoParkLen)) return;
    gadget_ = at;
  } catch (const CoreError&) {
    gadget_ = 0;  // not armed: the vDSO's own syscall is used
  }
}

VdsoPark::~VdsoPark() { disarm(); }

void VdsoPark::disarm() {
  if (gadget_ == 0) return;
  clear_vdso_park(pid_, gadget_);
  gadget_ = 0;
}

void clear_vdso_park(int pid, uint64_t gadget) {
  const uint8_t zero[kVdsoParkLen] = {};
  mem_write(pid, gadget, zero, sizeof zero);
}

std::unique_ptr<VdsoParkNote> parked_in_vdso(SeizedTask& task) {
  user_regs_struct now = task.regs();
  auto note = std::make_unique<VdsoParkNote>();
  try {
    remote_read(task.pid(), vdso_park_note_at(now.rsp), note.get(), sizeof *note);
  } catch (const CoreError&) {
    return nullptr;
  }
  if (note->magic != kVdsoParkMagic || note->pid != task.pid()) return nullptr;
  if (now.rip < note->gadget || now.rip >= note->gadget + kVdsoParkLen) return nullptr;
  uint8_t code[kVdsoParkLen];
  try {
    remote_mem_read(task.pid(), note->gadget, code, sizeof code);
  } catch (const CoreError&) {
    return nullptr;
  }
  if (std::memcmp(code, kParkCode, sizeof code) != 0) return nullptr;
  return note;
}

}  // namespace cryopod
