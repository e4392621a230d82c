// Terminals: a pseudo-terminal slave (/dev/pts/N), a virtual console or serial line (/dev/ttyN,
// /dev/ttySN) or /dev/tty held by the tree, as a shell job or `kubectl run -it` has them on its stdio. The
// terminal itself lives outside the tree, so it is external (inherit.h): re-attached on restore to the
// restorer's (its own fd of that number by default, or what --inherit-fd names). The controlling
// terminal and job control (foreground process group) are not restored. A pseudo-terminal master is
// refused: the tree would own the terminal.
#include <sys/sysmacros.h>

#include "file_kind.h"
#include "inherit.h"

namespace cryopod {

namespace {

constexpr unsigned kPtsMajorFirst = 136, kPtsMajorLast = 143, kTtyMajor = 4, kAuxTtyMajor = 5;

bool is_terminal(const FdProbe& p) {
  if (!S_ISCHR(p.st.st_mode)) return false;
  unsigned maj = major(p.st.st_rdev), min = minor(p.st.st_rdev);
  return (maj >= kPtsMajorFirst && maj <= kPtsMajorLast) || maj == kTtyMajor || (maj == kAuxTtyMajor && min <= 2);
}

bool is_ptmx(const FdProbe& p) { return major(p.st.st_rdev) == kAuxTtyMajor && minor(p.st.st_rdev) == 2; }

FileVerdict check_tty(const FdProbe& p) {
  if (is_ptmx(p)) return {FileVerdict::Refused, "a pseudo-terminal master: the tree owns a terminal, which cannot be saved"};
  return {FileVerdict::External, "a terminal: re-attached on restore to the restorer's (--inherit-fd " + std::to_string(p.fd) +
                                     ":<fd or path>" + (p.fd <= 2 ? "; by default the restorer's own" : "") +
                                     "); the controlling terminal and job control are not restored"};
}

void dump_tty(const FdProbe&, OpenFile& f) { mark_external(f); }

long restore_tty(Morph& m, const OpenFile& f, RestoreScope& scope) { return open_inherited(m, f, scope); }

}  // namespace

extern const FileKind kTtyKind = {"tty", is_terminal, check_tty, dump_tty, nullptr, restore_tty};

}  // namespace cryopod
