// The file layer: one module per kind of open file behind one ops table (as CRIU's struct fdtype_ops,
// criu/include/files.h), and a generic driver (file_driver.h) that detects, dumps, checks and restores
// every fd of a task in the order the kinds ask for.
//
//   detect   from /proc/PID/fd/N (the link and stat) and /proc/PID/fdinfo/N: is this fd mine?
//   check    preflight: can it be saved? reads /proc only, never stops the task (nullptr: yes)
//   dump     its state into OpenFile::state (the task is stopped; FdProbe::dup() hands the dumper a
//            duplicate of the fd through pidfd_getfd, to read what fdinfo does not show)
//   needs    the fds that must exist in the restored task first (an epoll's targets)
//   restore  re-creates it inside the stub by remote syscalls; returns the new fd (the driver moves it
//            to its number and sets its flags)
//
// Adding a kind: one new file here defining a `const FileKind`, and one KIND() line in kinds.def.
#pragma once

#include <sys/stat.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../task_model.h"

namespace cryopod {

class FdHandover;
class Morph;
class RemoteSyscalls;

// What /proc says of one fd of a task.
struct FdProbe {
  int pid = 0, fd = -1;
  std::string link;      // readlink of /proc/PID/fd/N: a path, "pipe:[ino]", "anon_inode:[eventfd]", ...
  struct stat st {};     // stat through that link (the open object itself)
  std::string fdinfo;    // the whole /proc/PID/fdinfo/N
  int flags = 0;         // "flags:" (octal), with O_CLOEXEC
  uint64_t pos = 0;      // "pos:"

  // The value after "key:" on the first line that starts with it ("" when none).
  std::string field(const std::string& key) const;
  // Every line of fdinfo that starts with `key:` (an epoll's "tfd:", an inotify's "inotify wd:").
  std::vector<std::string> lines(const std::string& key) const;
  // A duplicate of the fd in the dumper (pidfd_getfd, Linux 5.6+); the caller closes it.
  int dup() const;
  // "pid 12: fd 4 (anon_inode:[eventfd])", for errors.
  std::string name() const;
  [[noreturn]] void refuse(const std::string& why) const;
};

FdProbe probe_fd(int pid, int fd);

// A preflight verdict on one fd.
struct FileVerdict {
  enum Status { Saved, External, Refused } status = Saved;
  std::string note;  // what is saved, how an external one is re-attached, or why it is refused
};

// Where a restore takes an fd it is told to inherit (CRIU's --inherit-fd) from.
struct InheritFd {
  int fd = -1;                 // the saved fd number it replaces
  enum From { RestorerFd, StubFd, Path } from = RestorerFd;
  int source_fd = -1;          // RestorerFd: an fd of the restoring process; StubFd: one of the stub's own
  std::string path;            // Path: opened inside the stub with the saved flags
};

struct PipeSource;
// What a kind's restore may use besides the task.
struct RestoreScope {
  const std::map<uint64_t, PipeSource>* pipes = nullptr;  // a tree's pipes, by inode
  std::vector<InheritFd> inherit;
  int restorer_pid = 0;             // our own pid, as the stub's /proc sees it
  bool stub_adopted = false;        // a stub someone else started (a container's): its own stdio count
  std::map<int, int> stub_fds;      // the stub's own fd N at start → where it is kept during the restore
  // Objects restored in one stub and handed to later holders (shared_files.h): shared descriptions,
  // a socketpair's second end. One for the whole restore (a tree's tasks share it).
  std::shared_ptr<FdHandover> handover;
};

struct FileKind {
  const char* name;  // OpenFile::kind
  bool (*detect)(const FdProbe& p);
  FileVerdict (*check)(const FdProbe& p);  // nullptr: always saved
  void (*dump)(const FdProbe& p, OpenFile& f);
  std::vector<int> (*needs)(const OpenFile& f);  // nullptr: nothing
  long (*restore)(Morph& m, const OpenFile& f, RestoreScope& scope);
};

// Every kind, in detection order (kinds.def).
const std::vector<const FileKind*>& file_kinds();
const FileKind* kind_named(const std::string& name);

}  // namespace cryopod
