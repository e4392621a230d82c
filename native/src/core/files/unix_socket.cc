// Unix sockets (stream, datagram, seqpacket): listening ones on a path or in the abstract namespace,
// bound or unbound ones, and connections whose both ends this process holds (a socketpair, or a
// connection it made to itself) with the bytes queued in both directions.
//
//   dump:    the type, state and name from a duplicate of the fd (pidfd_getfd); the peer's inode and a
//            listener's backlog from sock_diag, asked in the task's network namespace (a thread of ours
//            joins it just to open the netlink socket); the queue read without consuming it (MSG_PEEK
//            with SO_PEEK_OFF, which we put back), one item per datagram.
//   restore: a pair with socketpair() when the first end comes, in the task that holds it; the other
//            end kept by the restorer until its first holder comes (this task or a later one of the
//            tree) and handed to it with SCM_RIGHTS (shared_files.h); the queued bytes written into
//            each end by the restorer through the other. An end held by several fds or tasks is one
//            shared description, re-created once. A listener is bound again (a stale socket file at
//            its path is removed first) and listens.
// Refused, naming the fd: a peer held by a process outside the dumped tree (preflight.cc) or by none,
// SCM_RIGHTS or credentials in flight, a half-open connection. Connections pending in a listener's backlog are not
// kept: their clients see the connection reset, as when a server restarts.
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <thread>

#include "../errors.h"
#include "../proc.h"
#include "../restore_morph.h"
#include "file_kind.h"
#include "shared_files.h"
#include "unix_socket.h"

namespace cryopod {

namespace {

constexpr size_t kMaxQueueBytes = 4 << 20;  // per socket

bool in_net_unix(int pid, uint64_t ino) {
  try {
    std::string t = read_text("/proc/" + std::to_string(pid) + "/net/unix");
    std::string key = " " + std::to_string(ino);
    for (size_t at = t.find(key); at != std::string::npos; at = t.find(key, at + 1)) {
      size_t end = at + key.size();
      if (end == t.size() || t[end] == ' ' || t[end] == '\n') return true;
    }
  } catch (const CoreError&) {
  }
  return false;
}

// The socket type (SOCK_STREAM, ...) in /proc/PID/net/unix's "Type" column, 0 when it is not listed.
int type_in_net_unix(int pid, uint64_t ino) {
  try {
    std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/net/unix"));
    std::string line;
    while (std::getline(in, line)) {
      char num[32];
      unsigned ref, proto, flags, type, st;
      unsigned long long inode;
      if (sscanf(line.c_str(), "%31s %x %x %x %x %x %llu", num, &ref, &proto, &flags, &type, &st, &inode) == 7 && inode == ino) return (int)type;
    }
  } catch (const CoreError&) {
  }
  return 0;
}

bool is_unix(const FdProbe& p) { return p.link.rfind("socket:[", 0) == 0 && in_net_unix(p.pid, p.st.st_ino); }

// A NETLINK_SOCK_DIAG socket of the task's network namespace: a thread of ours joins it, opens the
// socket and ends (the namespace is per thread; the socket stays usable from every thread).
int diag_socket_in(int pid) {
  int fd = -1, err = 0;
  std::thread t([&] {
    int ns = open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      err = errno;
    } else {
      fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
      if (fd < 0) err = errno;
    }
    if (ns >= 0) close(ns);
  });
  t.join();
  if (fd < 0) throw_errno("sock_diag socket in the network namespace of pid " + std::to_string(pid), err);
  return fd;
}

struct Diag {
  uint8_t state = 0;     // TCP_ESTABLISHED (1) for a connection, TCP_LISTEN (10), TCP_CLOSE (7)
  uint32_t peer = 0;
  uint32_t backlog = 0;  // a listener's maximum
  uint32_t pending = 0;  // a listener's connections not accepted yet
  bool shut = false;
};

Diag sock_diag(const FdProbe& p) {
  int nl = diag_socket_in(p.pid);
  struct {
    nlmsghdr h;
    unix_diag_req r;
  } req{};
  req.h.nlmsg_len = sizeof req;
  req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.h.nlmsg_flags = NLM_F_REQUEST;
  req.r.sdiag_family = AF_UNIX;
  req.r.udiag_states = ~0u;
  req.r.udiag_ino = (uint32_t)p.st.st_ino;
  req.r.udiag_show = UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
  req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
  alignas(nlmsghdr) char buf[8192];
  ssize_t n = -1;
  if (send(nl, &req, sizeof req, 0) == (ssize_t)sizeof req) n = recv(nl, buf, sizeof buf, 0);
  int err = errno;
  close(nl);
  if (n < 0) throw_errno("sock_diag of " + p.name(), err);
  auto* h = (nlmsghdr*)buf;
  if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) p.refuse("sock_diag does not describe this unix socket");
  Diag d;
  auto* msg = (unix_diag_msg*)NLMSG_DATA(h);
  d.state = msg->udiag_state;
  int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof *msg);
  for (auto* a = (rtattr*)(msg + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    if (a->rta_type == UNIX_DIAG_PEER) std::memcpy(&d.peer, RTA_DATA(a), sizeof d.peer);
    if (a->rta_type == UNIX_DIAG_RQLEN) {
      unix_diag_rqlen q{};
      std::memcpy(&q, RTA_DATA(a), sizeof q);
      d.backlog = q.udiag_wqueue;
      d.pending = q.udiag_rqueue;
    }
  }
  return d;
}

int sockopt(int fd, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  return getsockopt(fd, SOL_SOCKET, opt, &v, &len) == 0 ? v : -1;
}

// Every message queued for reading, left in place: the peek offset walks the queue and is put back.
std::vector<FileState> peek_queue(const FdProbe& p, int fd, int type) {
  std::vector<FileState> out;
  int saved_off = sockopt(fd, SO_PEEK_OFF), zero = 0;
  if (setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) != 0) throw_errno("SO_PEEK_OFF on " + p.name());
  std::vector<uint8_t> buf(1 << 16);
  size_t total = 0;
  std::string refused;
  for (;;) {
    iovec iov{buf.data(), buf.size()};
    msghdr h{};
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    ssize_t n = recvmsg(fd, &h, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN) refused = std::string("peeking its queue failed: ") + std::strerror(errno);
      break;
    }
    if (h.msg_flags & MSG_CTRUNC) refused = "a message in its queue carries SCM_RIGHTS or credentials, which are not saved";
    if (h.msg_flags & MSG_TRUNC) refused = "a datagram in its queue is larger than 64 KiB";
    if (n == 0 && type == SOCK_STREAM) break;  // the peer shut down writing
    if (!refused.empty()) break;
    total += (size_t)n;
    if (total > kMaxQueueBytes) {
      refused = "more than 4 MiB are queued on it";
      break;
    }
    if (type == SOCK_STREAM && !out.empty()) {
      out.back().data.insert(out.back().data.end(), buf.begin(), buf.begin() + n);
    } else {
      out.emplace_back();
      out.back().data.assign(buf.begin(), buf.begin() + n);
    }
  }
  setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &saved_off, sizeof saved_off);
  if (!refused.empty()) p.refuse(refused);
  return out;
}

constexpr uint8_t kEstablished = 1;  // TCP_ESTABLISHED, as unix_diag reports a connection

// A stream or seqpacket connection whose peer was closed (the kernel keeps no peer inode for it): its
// reads see what is queued and then the end, its writes EPIPE. Restored as one end of a new pair
// whose other end is closed once it has sent the queue.
bool peer_gone(const Diag& d, int type) { return d.peer == 0 && d.state == kEstablished && type != SOCK_DGRAM; }

FileVerdict check_unix(const FdProbe& p) {
  try {
    Diag d = sock_diag(p);
    if (d.peer == 0 && d.state == kEstablished) {
      if (peer_gone(d, type_in_net_unix(p.pid, p.st.st_ino)))
        return {FileVerdict::Saved, "connected to a peer that has closed: restored so (its queued bytes, then the end)"};
      return {FileVerdict::Refused, "a datagram socket connected to a socket that is gone"};
    }
    if (d.peer != 0) {
      std::string peer = "socket:[" + std::to_string(d.peer) + "]";
      for (int fd : list_fds(p.pid))
        if (read_link("/proc/" + std::to_string(p.pid) + "/fd/" + std::to_string(fd)) == peer)
          return {FileVerdict::Saved, "connected to fd " + std::to_string(fd) + " of the same process, with its queue"};
      // Another process: whether it is in the dumped tree is the preflight's to say (preflight.cc).
      return {FileVerdict::Saved, "connected to " + peer + " of another process, with its queue"};
    }
  } catch (const CoreError& e) {
    return {FileVerdict::Refused, e.what()};
  }
  return {FileVerdict::Saved, "re-created (a listener's pending connections come back as ones that close at once)"};
}

}  // namespace

uint64_t unix_peer_of(const FdProbe& p) { return sock_diag(p).peer; }

namespace {

void dump_unix(const FdProbe& p, OpenFile& f) {
  int fd = p.dup();
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  FileState& s = f.state;
  int type = sockopt(fd, SO_TYPE);
  s.num["ino"] = p.st.st_ino;
  s.num["type"] = (uint64_t)type;
  s.num["listening"] = sockopt(fd, SO_ACCEPTCONN) == 1;
  sockaddr_un sa{};
  socklen_t len = sizeof sa;
  if (getsockname(fd, (sockaddr*)&sa, &len) != 0) throw_errno("getsockname " + p.name());
  size_t name_len = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
  bool abstract = name_len > 0 && sa.sun_path[0] == '\0';
  std::string name = abstract ? std::string(sa.sun_path + 1, name_len - 1) : std::string(sa.sun_path, strnlen(sa.sun_path, name_len));
  if (!name.empty()) {
    s.text["name"] = name;
    s.num["abstract"] = abstract;
  }
  Diag d = sock_diag(p);
  s.num["peer"] = d.peer;
  if (s.num["listening"]) {
    s.num["backlog"] = d.backlog;
    if (d.pending) s.num["pending"] = d.pending;
    return;
  }
  if (d.peer == 0) {
    if (peer_gone(d, type)) {
      s.num["peer_gone"] = 1;
      s.items = peek_queue(p, fd, type);
      return;
    }
    sockaddr_un peer{};
    socklen_t pl = sizeof peer;
    if (getpeername(fd, (sockaddr*)&peer, &pl) == 0) p.refuse("it is connected to a socket that is gone or not visible here");
    return;  // bound or unbound, not connected
  }
  FileVerdict v = check_unix(p);
  if (v.status != FileVerdict::Saved) p.refuse(v.note);
  s.items = peek_queue(p, fd, type);
}

// A pathname a dead listener left behind: removed when it is a socket, so that bind() can take it.
void clear_stale_socket_file(Morph& m, const std::string& path) {
  struct stat st {};
  uint64_t at = m.put_string(0, path);
  if (m.rs().call(SYS_newfstatat, (uint64_t)AT_FDCWD, at, m.scratch() + 2048, AT_SYMLINK_NOFOLLOW) != 0) return;
  remote_read(m.task().pid(), m.scratch() + 2048, &st, sizeof st);
  if (S_ISSOCK(st.st_mode)) m.rs().call(SYS_unlinkat, (uint64_t)AT_FDCWD, at, 0);
}

// Queued messages written by the restorer through its duplicate of the peer end: one send per datagram.
void write_queue(int into, const OpenFile& f, const std::string& what) {
  for (const FileState& msg : f.state.items) {
    if (msg.data.empty()) continue;
    ssize_t n = send(into, msg.data.data(), msg.data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n != (ssize_t)msg.data.size()) throw_errno("queue " + std::to_string(msg.data.size()) + " bytes for " + what, n < 0 ? errno : EIO);
  }
}

long restore_unix(Morph& m, const OpenFile& f, RestoreScope& scope) {
  std::string what = "fd " + std::to_string(f.fd) + " (unix socket)";
  auto& rs = m.rs();
  uint64_t ino = f.state.need("ino", what), peer = f.state.get("peer");
  int type = (int)f.state.need("type", what);
  if (peer == 0 && f.state.get("peer_gone")) {
    uint64_t pair = m.scratch() + 2048;
    rs.must("socketpair for " + what, SYS_socketpair, AF_UNIX, (uint64_t)type | SOCK_CLOEXEC, 0, pair);
    int fds[2];
    remote_read(m.task().pid(), pair, fds, sizeof fds);
    // What it had to read, sent by the peer that then goes away (written through our duplicate of it).
    int gone = -1;
    try {
      gone = FdHandover::take(m.task().pid(), fds[1], what + "'s closed peer");
      write_queue(gone, f, what);
    } catch (...) {
      if (gone >= 0) close(gone);
      rs.call(SYS_close, (uint64_t)fds[0]);
      rs.call(SYS_close, (uint64_t)fds[1]);
      throw;
    }
    close(gone);
    rs.call(SYS_close, (uint64_t)fds[1]);
    return fds[0];
  }
  if (peer != 0) {
    // The restorer keeps the second end of a pair (and the first, to send the second's queue through)
    // until the peer's first holder comes, in this task or a later one of the tree (shared_files.h).
    FdHandover& h = *scope.handover;
    std::string mine_key = "unix-end:" + std::to_string(ino), from_key = "unix-from:" + std::to_string(ino);
    if (h.kept(mine_key) >= 0) {  // the second end: made with the first
      long fd = h.give(m, h.kept(mine_key), what);
      write_queue(h.kept(from_key), f, what);
      h.drop(mine_key);
      h.drop(from_key);
      return fd;
    }
    uint64_t pair = m.scratch() + 2048;
    rs.must("socketpair for " + what, SYS_socketpair, AF_UNIX, (uint64_t)type, 0, pair);
    int fds[2];
    remote_read(m.task().pid(), pair, fds, sizeof fds);
    int other = -1, first = -1;
    try {
      other = FdHandover::take(m.task().pid(), fds[1], what + "'s peer");
      first = FdHandover::take(m.task().pid(), fds[0], what);
    } catch (...) {
      if (other >= 0) close(other);
      rs.call(SYS_close, (uint64_t)fds[0]);
      rs.call(SYS_close, (uint64_t)fds[1]);
      throw;
    }
    rs.call(SYS_close, (uint64_t)fds[1]);
    h.keep("unix-end:" + std::to_string(peer), other);
    h.keep("unix-from:" + std::to_string(peer), first);
    write_queue(other, f, what);  // what this end had to read, sent from its peer
    return fds[0];
  }
  long fd = rs.call(SYS_socket, AF_UNIX, (uint64_t)type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno("in the restored task: socket for " + what, (int)-fd);
  auto name = f.state.text.find("name");
  if (name != f.state.text.end()) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    bool abstract = f.state.get("abstract") != 0;
    if (name->second.size() + (abstract ? 1 : 0) > sizeof sa.sun_path) throw CoreError("EIMAGE", what + ": its name is too long");
    std::memcpy(sa.sun_path + (abstract ? 1 : 0), name->second.data(), name->second.size());
    // Abstract: the leading NUL and the name; a path: the name and its NUL.
    socklen_t len = (socklen_t)(offsetof(sockaddr_un, sun_path) + name->second.size() + 1);
    if (!abstract) clear_stale_socket_file(m, name->second);
    long r = rs.call(SYS_bind, (uint64_t)fd, m.put(1024, &sa, len), len);
    if (r == -EADDRINUSE) throw CoreError("EADDRINUSE", what + ": " + (abstract ? "@" : "") + name->second + " is in use (is the checkpointed process still running?)");
    if (r < 0) throw_errno("in the restored task: bind " + name->second, (int)-r);
    if (f.state.get("listening")) {
      rs.must("listen " + what, SYS_listen, (uint64_t)fd, f.state.get("backlog", 128));
      // As for TCP (inet_socket.cc): the program may have been told these were waiting; each comes
      // back as a connection from the task itself that is closed at once (accept, then end-of-file).
      uint64_t pending = std::min<uint64_t>(f.state.get("pending"), std::min<uint64_t>(f.state.get("backlog", 128), 64));
      for (uint64_t i = 0; i < pending; ++i) {
        long c = rs.must("socket for a pending connection of " + what, SYS_socket, AF_UNIX, (uint64_t)type | SOCK_CLOEXEC, 0);
        long cr = rs.call(SYS_connect, (uint64_t)c, m.put(1024, &sa, len), len);
        rs.call(SYS_close, (uint64_t)c);
        if (cr < 0) throw_errno("in the restored task: connect to its own listener for a pending connection of " + what, (int)-cr);
      }
    }
    return fd;
  }
  if (f.state.get("listening")) rs.must("listen " + what, SYS_listen, (uint64_t)fd, f.state.get("backlog", 128));
  return fd;
}

}  // namespace

extern const FileKind kUnixSocketKind = {"unix", is_unix, check_unix, dump_unix, nullptr, restore_unix};

}  // namespace cryopod
