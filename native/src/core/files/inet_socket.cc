// IPv4/IPv6 sockets that listen (TCP) or are bound and unconnected (UDP): described from inside the task
// (remote getsockopt/getsockname, so in its network namespace) and re-created, bound and listening again
// on restore. A connection is restored reset; a listener's pending connections as ones that close at once.
#include "inet_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <algorithm>

#include "../dump_steps.h"
#include "../errors.h"
#include "../restore_morph.h"
#include "file_kind.h"

namespace cryopod {

namespace {

// What only the task itself can report, asked through remote syscalls on a scratch page.
int remote_sockopt(RemoteSyscalls& rs, int pid, uint64_t scratch, int fd, int level, int opt) {
  int len = sizeof(int);
  remote_write(pid, scratch + 8, &len, sizeof len);
  long r = rs.call(SYS_getsockopt, fd, level, opt, scratch, scratch + 8);
  if (r < 0) return -1;
  int v = 0;
  remote_read(pid, scratch, &v, sizeof v);
  return v;
}

}  // namespace

void describe_socket(RemoteSyscalls& rs, int pid, uint64_t scratch, OpenFile& f) {
  auto refuse = [&](const std::string& why) {
    throw CoreError("EUNSUPPORTED", task_name(pid) + ": fd " + std::to_string(f.fd) + " (" + f.path + "): " + why);
  };
  InetSocket& s = f.socket;
  s.family = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_DOMAIN);
  if (s.family != AF_INET && s.family != AF_INET6) refuse("only IPv4/IPv6 sockets are supported yet (unix, netlink and others are not)");
  s.type = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_TYPE);
  s.protocol = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_PROTOCOL);
  if (s.type != SOCK_STREAM && s.type != SOCK_DGRAM) refuse("only stream and datagram sockets are supported yet");
  s.listening = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_ACCEPTCONN) == 1;
  s.reuseaddr = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_REUSEADDR) == 1;
  s.reuseport = remote_sockopt(rs, pid, scratch, f.fd, SOL_SOCKET, SO_REUSEPORT) == 1;
  if (s.family == AF_INET6) s.v6only = remote_sockopt(rs, pid, scratch, f.fd, IPPROTO_IPV6, IPV6_V6ONLY) == 1;
  // A peer means a connection: its state (sequence numbers, queues) is not saved yet.
  int len = sizeof(sockaddr_storage);
  remote_write(pid, scratch + 512, &len, sizeof len);
  if (rs.call(SYS_getpeername, f.fd, scratch + 256, scratch + 512) == 0) {
    if (s.type != SOCK_STREAM) refuse("connected datagram sockets are not supported yet");
    s.connected_lost = true;  // a TCP connection: its peer will be gone after a restore anyway
  }
  remote_write(pid, scratch + 512, &len, sizeof len);
  rs.must("getsockname", SYS_getsockname, f.fd, scratch + 256, scratch + 512);
  sockaddr_storage ss{};
  remote_read(pid, scratch + 256, &ss, sizeof ss);
  char text[INET6_ADDRSTRLEN] = {0};
  if (s.family == AF_INET) {
    auto* in = (sockaddr_in*)&ss;
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    s.port = ntohs(in->sin_port);
  } else {
    auto* in6 = (sockaddr_in6*)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    s.port = ntohs(in6->sin6_port);
  }
  s.address = text;
  if (s.port == 0) refuse("an unbound socket is not supported yet");
  s.backlog = 0;
  if (s.listening) {
    // A TCP listener's TCP_INFO gives its accept queue: tcpi_unacked is the number of connections
    // waiting to be accepted, tcpi_sacked the backlog it was given (tcp_get_info, TCP_LISTEN case).
    tcp_info info{};
    int ilen = sizeof info;
    remote_write(pid, scratch + 8, &ilen, sizeof ilen);
    if (rs.call(SYS_getsockopt, f.fd, IPPROTO_TCP, TCP_INFO, scratch + 1024, scratch + 8) == 0) {
      remote_read(pid, scratch + 1024, &info, sizeof info);
      s.backlog = (int)std::min<uint32_t>(info.tcpi_sacked, 0x7fffffff);
      s.pending = (int)info.tcpi_unacked;
    } else {
      s.backlog = 128;  // what the kernel caps at net.core.somaxconn anyway
    }
  }
}

namespace {

// A TCP socket whose connection was reset, as after a network failure: connected over loopback inside
// the task (so in its network namespace) to a listener of its own, whose accepted end is closed with
// SO_LINGER 0 (an RST). The program's next read sees ECONNRESET, the next write EPIPE.
long reset_tcp_socket(Morph& m, const OpenFile& f) {
  auto& rs = m.rs();
  std::string what = "fd " + std::to_string(f.fd) + " (a TCP connection, restored reset)";
  int family = f.socket.family;
  sockaddr_storage ss{};
  socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (family == AF_INET) {
    auto* in = (sockaddr_in*)&ss;
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    auto* in6 = (sockaddr_in6*)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
  }
  long l = rs.must("socket for " + what, SYS_socket, family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  uint64_t addr = m.put(0, &ss, len), alen = m.scratch() + 512;
  rs.must("bind loopback for " + what, SYS_bind, (uint64_t)l, addr, len);
  rs.must("listen for " + what, SYS_listen, (uint64_t)l, 1);
  remote_write(m.task().pid(), alen, &len, sizeof len);
  rs.must("getsockname for " + what, SYS_getsockname, (uint64_t)l, addr, alen);
  long c = rs.must("socket for " + what, SYS_socket, family, SOCK_STREAM, 0);
  long r = rs.call(SYS_connect, (uint64_t)c, addr, len);
  if (r < 0) {
    rs.call(SYS_close, (uint64_t)l);
    throw_errno("in the restored task: connect over loopback for " + what + " (is lo up in its network namespace?)", (int)-r);
  }
  long a = rs.must("accept for " + what, SYS_accept4, (uint64_t)l, 0, 0, SOCK_CLOEXEC);
  struct { int32_t onoff, linger; } lg{1, 0};
  rs.must("SO_LINGER for " + what, SYS_setsockopt, (uint64_t)a, SOL_SOCKET, SO_LINGER, m.put(1024, &lg, sizeof lg), sizeof lg);
  rs.call(SYS_close, (uint64_t)a);
  rs.call(SYS_close, (uint64_t)l);
  return c;
}

}  // namespace

namespace {

// The program may have been told a connection was waiting (poll, epoll or select said the listener was
// readable just before the freeze: PostgreSQL's postmaster then calls a blocking accept()). Those
// connections are gone with the old kernel's socket, so each is replaced by one that closes at once:
// connected from inside the task (its network namespace) over the listener's own address, then closed.
// The program accepts it and reads end-of-file, as from a client that gave up, and never blocks in an
// accept() nothing will answer.
void restore_pending_connections(Morph& m, long listener, const InetSocket& s, sockaddr_storage addr, socklen_t len) {
  constexpr int kMaxPending = 64;
  auto& rs = m.rs();
  if (s.family == AF_INET) {
    auto* in = (sockaddr_in*)&addr;
    if (in->sin_addr.s_addr == htonl(INADDR_ANY)) in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    auto* in6 = (sockaddr_in6*)&addr;
    if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) in6->sin6_addr = in6addr_loopback;
  }
  uint64_t a = m.put(0, &addr, len);
  for (int i = 0; i < std::min(s.pending, kMaxPending); ++i) {
    long c = rs.must("socket for a pending connection of fd " + std::to_string(listener), SYS_socket, s.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    long r = rs.call(SYS_connect, (uint64_t)c, a, len);
    rs.call(SYS_close, (uint64_t)c);
    if (r < 0) throw_errno("in the restored task: connect to its own listener for a pending connection", (int)-r);
  }
}

// Re-creates a listening or bound IPv4/IPv6 socket inside the task (so in its network namespace).
long restore_socket(Morph& m, const OpenFile& f, RestoreScope&) {
  const InetSocket& s = f.socket;
  if (s.connected_lost) return reset_tcp_socket(m, f);
  auto& rs = m.rs();
  long fd = rs.call(SYS_socket, s.family, s.type, s.protocol);
  if (fd < 0) throw_errno("in the restored task: socket for fd " + std::to_string(f.fd), (int)-fd);
  int one = 1, zero = 0;
  auto setopt = [&](int level, int opt, bool on) {
    rs.must("setsockopt", SYS_setsockopt, (uint64_t)fd, level, opt, m.put(0, on ? &one : &zero, sizeof(int)), sizeof(int));
  };
  setopt(SOL_SOCKET, SO_REUSEADDR, true);  // while binding: old connections of this port may linger
  if (s.reuseport) setopt(SOL_SOCKET, SO_REUSEPORT, true);
  if (s.family == AF_INET6) setopt(IPPROTO_IPV6, IPV6_V6ONLY, s.v6only);
  sockaddr_storage ss{};
  socklen_t len;
  if (s.family == AF_INET) {
    auto* in = (sockaddr_in*)&ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)s.port);
    if (inet_pton(AF_INET, s.address.c_str(), &in->sin_addr) != 1) throw CoreError("EIMAGE", "bad IPv4 address " + s.address);
    len = sizeof(sockaddr_in);
  } else {
    auto* in6 = (sockaddr_in6*)&ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)s.port);
    if (inet_pton(AF_INET6, s.address.c_str(), &in6->sin6_addr) != 1) throw CoreError("EIMAGE", "bad IPv6 address " + s.address);
    len = sizeof(sockaddr_in6);
  }
  long r = rs.call(SYS_bind, (uint64_t)fd, m.put(0, &ss, len), len);
  if (r == -EADDRINUSE)
    throw CoreError("EADDRINUSE", "fd " + std::to_string(f.fd) + ": " + s.address + " port " + std::to_string(s.port) +
                                      " is in use (is the checkpointed process still running?)");
  // A TCP socket that neither listens nor has a peer, bound to an address this network namespace lacks
  // (a pod restored with a new IP): an accepted connection that had already ended when it was dumped
  // (TCP_CLOSE after the peer reset it: getpeername no longer names the peer, so it was saved as bound).
  // Restored as the dead connection it is, as connected sockets are.
  if (r == -EADDRNOTAVAIL && s.type == SOCK_STREAM && !s.listening) {
    rs.call(SYS_close, (uint64_t)fd);
    return reset_tcp_socket(m, f);
  }
  if (r < 0) throw_errno("in the restored task: bind " + s.address + ":" + std::to_string(s.port), (int)-r);
  if (s.listening) {
    rs.must("listen", SYS_listen, (uint64_t)fd, s.backlog);
    restore_pending_connections(m, fd, s, ss, len);
  }
  if (!s.reuseaddr) setopt(SOL_SOCKET, SO_REUSEADDR, false);
  return fd;
}

bool is_socket(const FdProbe& p) { return p.link.rfind("socket:[", 0) == 0; }

// Family, state and address are asked of the task itself (describe_socket), once it runs our syscalls.
void mark_socket(const FdProbe&, OpenFile& f) { f.has_socket = true; }

}  // namespace

extern const FileKind kInetSocketKind = {"socket", is_socket, nullptr, mark_socket, nullptr, restore_socket};

}  // namespace cryopod
