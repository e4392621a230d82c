/*
 * The dumper <-> parasite protocol. Shared by the freestanding blob (parasite.c) and the dumper
 * (src/core/parasite.cc): plain C, fixed-size types only.
 *
 * The shared area is a memfd the task creates (a remote memfd_create) and the dumper opens through
 * /proc/PID/fd, mapped in both:
 *
 *   0                 PARASITE_ARGS_OFF             PARASITE_STACK_OFF          PARASITE_AREA_SIZE
 *   ┌─────────────────┬─────────────────────────────┬───────────────────────────┐
 *   │ blob (code+data)│ struct parasite_args         │ stack (grows down) ──────►│
 *   │ entry at 0      │ socket address, page batch   │                           │
 *   └─────────────────┴─────────────────────────────┴───────────────────────────┘
 *
 * Control: SOCK_SEQPACKET socketpairs the task itself creates (a remote socketpair), whose other ends the
 * dumper takes with pidfd_getfd: no address, so they work in any network namespace and nobody else can
 * connect. ctl_fd serves the parasite; snapshot_fd is kept for the snapshot child (a fork inherits it).
 * One message per command, pipe fds ride on PARASITE_CMD_INIT as SCM_RIGHTS; every command gets one reply.
 *
 * Pages: the batch in the args lists iovecs grouped in segments of at most one pipe's capacity; the
 * parasite vmsplice()s segment s into pipe (s % pipes_used) while the dumper splice()s the pipes, in the
 * same order, into the pages image: no copy through user space on either side.
 */
#ifndef CRYOPOD_PARASITE_PROTOCOL_H
#define CRYOPOD_PARASITE_PROTOCOL_H

#include <stdint.h>

#define PARASITE_AREA_SIZE (1024 * 1024)
#define PARASITE_ARGS_OFF (64 * 1024)
#define PARASITE_STACK_OFF (768 * 1024)
/* The snapshot child runs on its own stack: the area is MAP_SHARED, so after fork both processes see
 * the same pages, and the parent's stack (top of the area) must not be the child's. */
#define PARASITE_CHILD_STACK_TOP (896 * 1024)
/* A `syscall` instruction followed by the park loop, at a fixed offset of the blob: while the area is
 * mapped, the dumper runs its remote syscalls here rather than on a vDSO one, so that a dumper that dies
 * at any ptrace stop leaves the task parked in the area (see parasite.c), never running on after a
 * vDSO instruction with the dumper's registers. */
#define PARASITE_GADGET_OFF 16
/* The rescue record: what a rescuer (native/src/core/rescue.cc) needs to put the task back as it was
 * when the dumper that infected it is gone. Written by the dumper before the blob first runs. */
#define PARASITE_RESCUE_OFF (512 * 1024)
/* A page the dumper's remote syscalls use for their in/out arguments while the area is mapped (no
 * scratch mapping of its own that a dumper's death would leave behind). */
#define PARASITE_SCRATCH_OFF (448 * 1024)
#define PARASITE_RESCUE_MAGIC 0x6575637365524350ULL /* "PCRescue" in memory order */
#define PARASITE_RESCUE_MAX_FDS 24
#define PARASITE_XSAVE_MAX 16384
/* Threads besides the main one whose registers the record holds: with more, their remote syscalls stay
 * on the vDSO (docs/native.md, "When the dumper dies"). */
#define PARASITE_RESCUE_MAX_THREADS 512
#define PARASITE_MAX_PIPES 16
#define PARASITE_MAX_IOVS 16384
#define PARASITE_MAX_SEGS 4096

enum parasite_cmd {
  PARASITE_CMD_INIT = 1,    /* receive the pipes (SCM_RIGHTS) */
  PARASITE_CMD_DUMP_PAGES,  /* vmsplice the batch in the args into the pipes */
  PARASITE_CMD_GETPID,      /* reply with the task's pid: a liveness check */
  PARASITE_CMD_FINI,        /* close everything, reply, then park until the dumper interrupts it (a snapshot
                               child exits). The blob never traps: an int3 without a tracer is a SIGTRAP death */
  PARASITE_CMD_SNAPSHOT,    /* fork: the child holds a copy-on-write snapshot of the task's memory, connects
                               on snapshot_fd and serves DUMP_PAGES/FINI; reply: its pid; the child
                               then says SNAPSHOT (value 0) on snapshot_fd once it holds its pipes */
};

struct parasite_msg {
  uint32_t cmd;
  uint32_t nr; /* INIT: number of pipes; DUMP_PAGES: number of segments */
  int64_t value; /* reply: result (>= 0) or -errno */
};

struct parasite_iov {
  uint64_t base;
  uint64_t len;
};

struct parasite_seg {
  uint32_t first_iov;
  uint32_t nr_iovs;
  uint64_t bytes;
};

struct parasite_args {
  int32_t ctl_fd;      /* the task's end of the control socketpair */
  int32_t snapshot_fd; /* the task's end of the snapshot child's socketpair */
  int32_t pair[2];     /* where the remote socketpair() writes its two fds */
  uint32_t nr_iovs;
  uint32_t nr_segs;
  /* DUMP_PAGES: segment s goes into pipe s % pipes_used (1..nr_pipes); warm != 0: read each segment
   * into the caches right after it is vmspliced (the sink copies it: see parasite.c, warm()). */
  uint32_t pipes_used;
  uint32_t warm;
  struct parasite_seg segs[PARASITE_MAX_SEGS];
  struct parasite_iov iovs[PARASITE_MAX_IOVS];
};

/*
 * The rescue record (at PARASITE_RESCUE_OFF). The task's own registers, signal mask and FPU state as the
 * dumper seized them, the fds the infection put into the task (with their inodes, so a rescuer closes
 * only those), and the snapshot child. A rescuer that finds the area in /proc/PID/maps and this magic
 * with this pid puts the task back from it. The blob never writes it.
 */
struct parasite_rescue_fd {
  int32_t fd;
  uint32_t pad;
  uint64_t ino;
};

/* A thread other than the main one, as seized: the dumper runs its remote syscalls (sigaltstack,
 * clear_child_tid, per-thread state) on the area's gadget, so it too may be parked there. */
struct parasite_rescue_thread {
  int32_t tid;
  uint32_t pad;
  uint64_t sigmask;
  uint64_t regs[27];
};

struct parasite_rescue {
  uint64_t magic;
  int32_t pid;          /* the task, in the dumper's PID namespace */
  int32_t child_pid;    /* the snapshot child in the dumper's namespace, 0 if none */
  int32_t child_ns_pid; /* ... and in the task's (a wait4 inside the task needs that one) */
  uint32_t nr_fds;
  uint64_t child_start; /* the child's start time (/proc/PID/stat field 22): never signal a stranger */
  uint64_t sigmask;
  uint64_t regs[27];    /* struct user_regs_struct */
  uint32_t xsave_len;
  uint32_t pad;
  struct parasite_rescue_fd fds[PARASITE_RESCUE_MAX_FDS];
  uint8_t xsave[PARASITE_XSAVE_MAX];
  uint32_t nr_threads;
  uint32_t pad2;
  struct parasite_rescue_thread threads[PARASITE_RESCUE_MAX_THREADS];
};

#endif
