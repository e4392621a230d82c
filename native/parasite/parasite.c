/*
 * The parasite: position-independent, freestanding code the dumper runs inside a stopped task.
 *
 * The dumper points the task's rip at parasite_start (offset 0 of the blob), rsp at the top of the
 * shared area's stack and rdi at struct parasite_args. It serves, on the socket end the args name,
 * commands (one enum, one dispatch switch, as CRIU's pie/parasite.c) until FINI or the end of the
 * control channel, closes what it holds and parks: pause() with every signal blocked, forever, until
 * the dumper (or a rescuer, when the dumper died) interrupts it with PTRACE_INTERRUPT and puts the
 * task's registers back. It never traps: an int3 with no tracer left would kill the task (SIGTRAP), and
 * a dumper SIGKILLed at any moment must cost the task nothing but a pause.
 * No libc, no globals that need relocation, all signals blocked by the dumper while it runs.
 */
#include "protocol.h"

#define SYS_close 3
#define SYS_sendto 44
#define SYS_recvmsg 47
#define SYS_getpid 39
#define SYS_pause 34
#define SYS_rt_sigtimedwait 128

#define EPIPE 32
#define SIGPIPE 13
#define MSG_NOSIGNAL 0x4000
#define SYS_vmsplice 278
#define SYS_dup2 33
#define SYS_exit_group 231
#define SYS_close_range 436
#define SYS_poll 7
#define POLLOUT 4

#define SOL_SOCKET 1
#define SCM_RIGHTS 1
#define EPROTO 71
#define EBADMSG 74

typedef unsigned long size_t;

struct iovec {
  void* iov_base;
  size_t iov_len;
};
struct msghdr {
  void* msg_name;
  int msg_namelen;
  struct iovec* msg_iov;
  size_t msg_iovlen;
  void* msg_control;
  size_t msg_controllen;
  int msg_flags;
};
struct cmsghdr {
  size_t cmsg_len;
  int cmsg_level;
  int cmsg_type;
};

static long sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#define sys3(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static int pipes[PARASITE_MAX_PIPES];
static unsigned nr_pipes;

/* MSG_NOSIGNAL: a dumper that died must not leave a SIGPIPE pending in the task (it is blocked while
 * the blob runs, and would be delivered, and kill it, the moment its own mask is put back). */
static void reply(int sk, uint32_t cmd, int64_t value) {
  struct parasite_msg m = {cmd, 0, value};
  sys6(SYS_sendto, sk, (long)&m, sizeof m, MSG_NOSIGNAL, 0, 0);
}

/* vmsplice into a pipe whose reader (the dumper) is gone queued a SIGPIPE for this thread (blocked
 * now): take it back out, for the same reason. (A SIGPIPE the task had pending and blocked before the
 * dump is the same signal: non-realtime signals do not queue.) */
static void drop_own_sigpipe(void) {
  uint64_t set = 1ULL << (SIGPIPE - 1);
  struct {
    long sec, nsec;
  } now = {0, 0};
  sys6(SYS_rt_sigtimedwait, (long)&set, 0, (long)&now, sizeof set, 0, 0);
}

/* Receives one command; pipe fds from SCM_RIGHTS land in `pipes`. */
static long receive(int sk, struct parasite_msg* m) {
  union {
    char buf[sizeof(struct cmsghdr) + PARASITE_MAX_PIPES * sizeof(int) + 8];
    struct cmsghdr align;
  } control;
  struct iovec iov = {m, sizeof *m};
  struct msghdr h = {0, 0, &iov, 1, control.buf, sizeof control.buf, 0};
  long n = sys3(SYS_recvmsg, sk, &h, 0);
  if (n != (long)sizeof *m) return n < 0 ? n : -EBADMSG;
  if (h.msg_controllen >= sizeof(struct cmsghdr)) {
    struct cmsghdr* c = (struct cmsghdr*)control.buf;
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      unsigned count = (unsigned)((c->cmsg_len - sizeof(struct cmsghdr)) / sizeof(int));
      int* fds = (int*)(control.buf + sizeof(struct cmsghdr));
      for (unsigned i = 0; i < nr_pipes; ++i) sys3(SYS_close, pipes[i], 0, 0);
      nr_pipes = 0;
      for (unsigned i = 0; i < count && i < PARASITE_MAX_PIPES; ++i) pipes[nr_pipes++] = fds[i];
    }
  }
  return n;
}

/*
 * Reads a segment into the caches right after it was vmspliced, when the sink copies (a tmpfs or
 * page-cache file). Writing into tmpfs costs dd and us the same page allocation, under the inode lock;
 * what we lost against dd was the copy itself, from DRAM-cold pages where dd copies from one hot
 * buffer. These loads run on the task's core while the dumper copies on the other: the pipe of this
 * segment is drained after the one before it, so the lines are still in the shared L3 then (two pipes:
 * a lead of one segment measured best; eight let them go cold again). Plain loads, made only after
 * vmsplice succeeded: the kernel has then checked the range is mapped readable for this task, and the
 * task is stopped, so they cannot fault. For /dev/null nothing is copied and this would only slow us.
 */
static void warm(uint64_t base, uint64_t len) {
  uint64_t sum = 0;
  for (uint64_t p = base; p < base + len; p += 64) sum += *(volatile const uint64_t*)p;
  __asm__ volatile("" : : "r"(sum));
}

/*
 * Sleeps until the pipe has room. The dumper's splice() out of a pipe holds the pipe's mutex for the
 * whole copy of a segment into the sink; a vmsplice() into that pipe meanwhile spun on the mutex
 * (mutex_spin_on_owner: ~0.3 s of this task's CPU per GiB dumped into tmpfs, measured with perf), where
 * poll() sleeps without taking it and is woken when the splice releases the pipe's buffers.
 */
static void wait_for_room(int fd) {
  struct {
    int fd;
    short events, revents;
  } p = {fd, POLLOUT, 0};
  sys3(SYS_poll, &p, 1, -1); /* POLLERR (the dumper gone) returns too: vmsplice then says EPIPE */
}

/* vmsplice every segment into its pipe, resuming after short counts; the total must match exactly. */
static int64_t dump_pages(const struct parasite_args* a, uint32_t nr_segs, const int* pipes, unsigned nr_pipes) {
  if (nr_pipes == 0 || nr_segs > a->nr_segs || a->nr_iovs > PARASITE_MAX_IOVS) return -EPROTO;
  if (a->pipes_used == 0 || a->pipes_used > nr_pipes) return -EPROTO;
  int64_t total = 0;
  for (uint32_t s = 0; s < nr_segs; ++s) {
    const struct parasite_seg* seg = &a->segs[s];
    if (seg->first_iov + seg->nr_iovs > a->nr_iovs) return -EPROTO;
    int fd = pipes[s % a->pipes_used];
    uint64_t done = 0;
    for (uint32_t i = 0; i < seg->nr_iovs; ++i) {
      struct parasite_iov pi = a->iovs[seg->first_iov + i];
      while (pi.len > 0) {
        struct iovec v = {(void*)pi.base, pi.len};
        wait_for_room(fd);
        long n = sys3(SYS_vmsplice, fd, &v, 1);
        if (n == -EPIPE) drop_own_sigpipe();
        if (n <= 0) return n < 0 ? n : -EPROTO;
        pi.base += (uint64_t)n;
        pi.len -= (uint64_t)n;
        done += (uint64_t)n;
      }
    }
    if (done != seg->bytes) return -EPROTO;
    if (a->warm)
      for (uint32_t i = 0; i < seg->nr_iovs; ++i) warm(a->iovs[seg->first_iov + i].base, a->iovs[seg->first_iov + i].len);
    total += (int64_t)done;
  }
  return total;
}

long snapshot_clone(void* child_stack, struct parasite_args* a);

/*
 * The snapshot child: a fork of the frozen task, so its memory is that instant's, copy-on-write. It keeps
 * only its pipes and its own socket (moved to high fds; every other fd of the task is closed, so it holds
 * none of the task's files open), serves DUMP_PAGES and exits on FINI. It touches no static: the blob's
 * data is in the shared area, which the parent parasite still uses. Its socket is snapshot_fd, inherited
 * from the task (the dumper holds the other end).
 */
__attribute__((noreturn, used)) void snapshot_child_main(struct parasite_args* a) {
  int mine[PARASITE_MAX_PIPES];
  unsigned n = nr_pipes;
  for (unsigned i = 0; i < n; ++i) mine[i] = pipes[i];
  long sk = a->snapshot_fd;
  /* Keep fds 1000.. (pipes, socket); the rest are the task's and must not be held open by us. */
  const int base = 1000;
  int moved = 1;
  for (unsigned i = 0; i < n; ++i)
    if (sys3(SYS_dup2, mine[i], base + (int)i, 0) != base + (long)i) moved = 0;
  if (moved && sys3(SYS_dup2, sk, base + (int)n, 0) == base + (long)n) {
    for (unsigned i = 0; i < n; ++i) mine[i] = base + (int)i;
    sk = base + (long)n;
    sys3(SYS_close_range, 0, base - 1, 0);
    sys3(SYS_close_range, base + n + 1, ~0U, 0);
  }
  /* The dumper waits for this before it lets the parent parasite go (FINI clears the shared `pipes`). */
  reply((int)sk, PARASITE_CMD_SNAPSHOT, 0);
  for (;;) {
    struct parasite_msg m;
    struct iovec iov = {&m, sizeof m};
    struct msghdr h = {0, 0, &iov, 1, 0, 0, 0};
    if (sys3(SYS_recvmsg, sk, &h, 0) != (long)sizeof m) break;
    if (m.cmd == PARASITE_CMD_DUMP_PAGES) {
      reply((int)sk, m.cmd, dump_pages(a, m.nr, mine, n));
    } else if (m.cmd == PARASITE_CMD_FINI) {
      reply((int)sk, m.cmd, 0);
      break;
    } else {
      reply((int)sk, m.cmd, -EPROTO);
    }
  }
  sys3(SYS_exit_group, 0, 0, 0);
  __builtin_unreachable();
}

long parasite_main(struct parasite_args* a) {
  long sk = a->ctl_fd;
  for (;;) {
    struct parasite_msg m;
    if (receive(sk, &m) < 0) break; /* the dumper went away: clean up and trap */
    switch (m.cmd) {
      case PARASITE_CMD_INIT:
        reply(sk, m.cmd, nr_pipes == m.nr ? 0 : -EPROTO);
        break;
      case PARASITE_CMD_DUMP_PAGES:
        reply(sk, m.cmd, dump_pages(a, m.nr, pipes, nr_pipes));
        break;
      case PARASITE_CMD_SNAPSHOT:
        reply(sk, m.cmd, snapshot_clone((char*)a - PARASITE_ARGS_OFF + PARASITE_CHILD_STACK_TOP, a));
        break;
      case PARASITE_CMD_GETPID:
        reply(sk, m.cmd, sys3(SYS_getpid, 0, 0, 0));
        break;
      case PARASITE_CMD_FINI:
        for (unsigned i = 0; i < nr_pipes; ++i) sys3(SYS_close, pipes[i], 0, 0);
        nr_pipes = 0;
        reply(sk, m.cmd, 0);
        sys3(SYS_close, sk, 0, 0);
        return 0;
      default:
        reply(sk, m.cmd, -EPROTO);
    }
  }
  /* EOF or an error on the control channel: the dumper is gone. Drop everything it gave us (a rescuer
   * finds the task holding nothing of ours) and park. */
  for (unsigned i = 0; i < nr_pipes; ++i) sys3(SYS_close, pipes[i], 0, 0);
  nr_pipes = 0;
  sys3(SYS_close, sk, 0, 0);
  sys3(SYS_close, a->snapshot_fd, 0, 0);
  return -EPROTO;
}

/*
 * clone() with exit signal 0 (the task gets no SIGCHLD for it and plain wait() does not see it; the
 * dumper reaps it through the task afterwards) and a stack of its own; the child jumps straight to
 * snapshot_child_main(args) and never returns here. rdi = child stack top, rsi = args.
 */
__asm__(
    ".text\n"
    ".globl snapshot_clone\n"
    "snapshot_clone:\n"
    "  push %r12\n"
    "  mov %rsi, %r12\n"
    "  mov %rdi, %rsi\n"
    "  xor %edi, %edi\n"
    "  xor %edx, %edx\n"
    "  xor %r10d, %r10d\n"
    "  xor %r8d, %r8d\n"
    "  mov $56, %eax\n"
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  mov %r12, %rdi\n"
    "  call snapshot_child_main\n"
    "  ud2\n"
    "1:\n"
    "  pop %r12\n"
    "  ret\n");

/*
 * Entry at offset 0: rdi = args, rsp = stack top (16-byte aligned). When parasite_main returns the
 * blob parks. At PARASITE_GADGET_OFF: the `syscall` the dumper's remote syscalls run on while the area
 * is mapped, followed by the same park, so a dumper that dies at a remote call's ptrace stop leaves the
 * task parked here. The park is pause() with the dumper's all-blocked mask: it returns for nothing but
 * a ptrace interrupt's restart, and loops.
 */
__asm__(
    ".section .text.start,\"ax\"\n"
    ".globl parasite_start\n"
    "parasite_start:\n"
    "  call parasite_main\n"
    "  jmp parasite_park\n"
    "  .org 16\n"
    "parasite_gadget:\n"
    "  syscall\n"
    "parasite_park:\n"
    "  mov $34, %eax\n"
    "  syscall\n"
    "  jmp parasite_park\n");
