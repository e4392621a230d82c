// Open file descriptions shared by several fds: dup'd in one task, or inherited across fork by several
// tasks of a tree (nginx's listening socket and channel ends in master and workers, postgres's log and
// postmaster-death pipe in every child). Restored as CRIU restores them (criu/files.c: files shared by
// id, one task opens the file and the others get it over a unix socket with SCM_RIGHTS), so the
// holders share one description again: one offset, one set of status flags, one socket, one pipe end.
//
//   dump:     every fd of the frozen tree is placed by kcmp(KCMP_FILE), which orders open files, among
//             the descriptions of the same device and inode (binary search: n log n kcmp calls); a
//             description held by two fds or more gets a share id (from 1,
//             in tree order), the same in each holder's OpenFile.
//   restore:  the first holder in tree order re-creates it through its kind; the restorer keeps a
//             duplicate (pidfd_getfd from the stopped stub) and hands that very description to every
//             later holder: sendmsg(SCM_RIGHTS) from us into a socketpair end the stub holds, recvmsg
//             by the stub (a remote syscall).
//
//      restorer (us)                         stub of a later holder
//      kept[share id] = dup ──sendmsg SCM_RIGHTS──► channel end (fd >= 1010) ──recvmsg──► new fd
//                                                                              └─ moved to its saved number
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "../task_model.h"

namespace cryopod {

class Morph;

// One fd of a task (our PID namespace).
struct FdRef {
  int pid = 0, fd = -1;
};

// For each fd, the index of the first fd in `fds` that holds the same open file description (itself
// when none before it does). Reads /proc and kcmp only.
std::vector<size_t> first_holders(const std::vector<FdRef>& fds);

// Gives every fd of these stopped tasks (host PIDs, before to_namespace_ids) that shares its open file
// description with another fd a share id (OpenFile::share_id), numbered from 1 in tree and fd order.
void assign_share_ids(const std::vector<TaskImage*>& tasks);

// The restorer's side of the hand-over: duplicates of objects restored in one stub, kept by name until
// a later holder (in the same stub or another) is given them. Closes everything it holds when destroyed.
class FdHandover {
 public:
  FdHandover() = default;
  FdHandover(const FdHandover&) = delete;
  FdHandover& operator=(const FdHandover&) = delete;
  ~FdHandover();

  // A duplicate, in the restorer, of fd `fd` of the stopped task `pid` (our PID namespace).
  static int take(int pid, int fd, const std::string& what);
  // Keeps our fd under `key` (the handover closes it); -1 when nothing is kept under it.
  void keep(const std::string& key, int our_fd);
  int kept(const std::string& key) const;
  void drop(const std::string& key);
  // Puts the open file of our fd `our_fd` into the morphing stub; returns its fd number there.
  long give(Morph& m, int our_fd, const std::string& what);
  // The stub will be given nothing more: closes its end of the channel and ours.
  void done_with(Morph& m);
  // Saved fds go up to `fd`: the channel's end in a stub must sit above them (a saved fd moved to its
  // number would otherwise close it).
  void reserve_up_to(int fd) { floor_ = fd + 1 > floor_ ? fd + 1 : floor_; }

 private:
  struct Channel {
    int ours = -1;
    long theirs = -1;
  };
  Channel& channel_to(Morph& m);
  std::map<std::string, int> kept_;
  std::map<int, Channel> channels_;  // by the stub's PID
  int floor_ = 1010;
};

}  // namespace cryopod
