// The generic driver of the file layer (file_kind.h): every fd of a task through the kind that detects
// it, for a dump, a preflight check and a restore.
#pragma once

#include <string>
#include <vector>

#include "file_kind.h"

namespace cryopod {

// Every open fd of a stopped task, dumped by its kind. Refuses (EUNSUPPORTED, naming the fd) one no kind
// takes or its kind cannot save.
std::vector<OpenFile> collect_files(int pid);

// The preflight of one fd: its kind (or "" when none takes it) and the verdict. Reads /proc only.
struct FdReport {
  int pid = 0, fd = -1;
  std::string object;  // the /proc/PID/fd link
  std::string kind;
  FileVerdict verdict;
};
std::vector<FdReport> check_files(int pid);

// Why no kind takes an fd (the kinds of file Cryopod does not save, by their /proc link).
std::string unsupported_reason(const FdProbe& p);

// The saved fds into a morphing stub: the stub's own fds closed but those the scope keeps, every fd
// re-created by its kind after the fds it needs, moved to its number with its flags.
void restore_files(Morph& m, const TaskImage& img, RestoreScope& scope);

// Moves a freshly made fd to its saved number with its status flags (O_APPEND, O_NONBLOCK, O_ASYNC) and
// close-on-exec.
void place_fd(Morph& m, long fd, const OpenFile& f);

}  // namespace cryopod
