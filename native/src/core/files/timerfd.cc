// timerfd: clock, settime flags (TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET), the time left and the
// interval, and the expirations not read yet, all from fdinfo. As in CRIU the time left is kept relative:
// a restore arms the timer to go off that long after it (an absolute timer at now + left on its clock),
// then gives back the unread expirations (TFD_IOC_SET_TICKS).
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

namespace cryopod {

namespace {

bool is_timerfd(const FdProbe& p) { return p.link == "anon_inode:[timerfd]"; }

bool pair_of(const FdProbe& p, const std::string& key, uint64_t& sec, uint64_t& nsec) {
  return sscanf(p.field(key).c_str(), "(%" SCNu64 ", %" SCNu64 ")", &sec, &nsec) == 2;
}

FileVerdict check_timerfd(const FdProbe& p) {
  uint64_t s, n;
  if (p.field("clockid").empty() || !pair_of(p, "it_value", s, n) || !pair_of(p, "it_interval", s, n))
    return {FileVerdict::Refused, "cannot read the timer from its fdinfo"};
  return {FileVerdict::Saved, "clock " + p.field("clockid") + ", " + (s || n ? "periodic" : "one-shot")};
}

void dump_timerfd(const FdProbe& p, OpenFile& f) {
  FileState& s = f.state;
  s.num["clockid"] = std::strtoull(p.field("clockid").c_str(), nullptr, 10);
  s.num["ticks"] = std::strtoull(p.field("ticks").c_str(), nullptr, 10);
  s.num["settime_flags"] = std::strtoul(p.field("settime flags").c_str(), nullptr, 8);
  uint64_t a, b;
  if (!pair_of(p, "it_value", a, b)) p.refuse("cannot read it_value from its fdinfo");
  s.num["value_sec"] = a;
  s.num["value_nsec"] = b;
  if (!pair_of(p, "it_interval", a, b)) p.refuse("cannot read it_interval from its fdinfo");
  s.num["interval_sec"] = a;
  s.num["interval_nsec"] = b;
}

long restore_timerfd(Morph& m, const OpenFile& f, RestoreScope&) {
  std::string what = "fd " + std::to_string(f.fd) + " (timerfd)";
  const FileState& s = f.state;
  int clockid = (int)s.need("clockid", what);
  long fd = m.rs().call(SYS_timerfd_create, (uint64_t)clockid, 0);
  if (fd < 0) throw_errno("in the restored task: timerfd_create(clock " + std::to_string(clockid) + ") for " + what, (int)-fd);
  itimerspec its{};
  its.it_value = {(time_t)s.need("value_sec", what), (long)s.need("value_nsec", what)};
  its.it_interval = {(time_t)s.need("interval_sec", what), (long)s.need("interval_nsec", what)};
  int flags = (int)s.get("settime_flags");
  if (!its.it_value.tv_sec && !its.it_value.tv_nsec && (its.it_interval.tv_sec || its.it_interval.tv_nsec)) {
    // A periodic timer that went off and was not read shows no time left (the kernel moves it on only
    // when it is read): its next expiration is one interval away.
    its.it_value = its.it_interval;
    flags &= ~TFD_TIMER_ABSTIME;
  }
  if (its.it_value.tv_sec || its.it_value.tv_nsec) {
    if (flags & TFD_TIMER_ABSTIME) {
      timespec now{};
      if (clock_gettime(clockid, &now) != 0) throw_errno("clock_gettime for " + what);
      its.it_value.tv_sec += now.tv_sec;
      its.it_value.tv_nsec += now.tv_nsec;
      if (its.it_value.tv_nsec >= 1000000000L) {
        its.it_value.tv_sec += 1;
        its.it_value.tv_nsec -= 1000000000L;
      }
    }
    long r = m.rs().call(SYS_timerfd_settime, (uint64_t)fd, (uint64_t)flags, m.put(0, &its, sizeof its), 0);
    if (r < 0) throw_errno("in the restored task: timerfd_settime for " + what, (int)-r);
  }
  uint64_t ticks = s.get("ticks");
  if (ticks > 0) {
    long r = m.rs().call(SYS_ioctl, (uint64_t)fd, TFD_IOC_SET_TICKS, m.put(256, &ticks, sizeof ticks));
    if (r < 0) throw_errno("in the restored task: " + what + ": TFD_IOC_SET_TICKS (a kernel with CONFIG_CHECKPOINT_RESTORE)", (int)-r);
  }
  return fd;
}

}  // namespace

extern const FileKind kTimerfdKind = {"timerfd", is_timerfd, check_timerfd, dump_timerfd, nullptr, restore_timerfd};

}  // namespace cryopod
