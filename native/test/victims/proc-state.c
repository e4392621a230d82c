/*
 * proc-state: process state besides memory and files that servers rely on, set up before the dump and
 * checked by the process itself afterwards (issue 10, item 3):
 *   rlimits (NOFILE 200/300, CORE 0/0, MSGQUEUE 4096/8192), ITIMER_REAL every 20 ms and a POSIX timer
 *   (CLOCK_MONOTONIC, SIGRTMIN+1, sigval 0x5eed, every 30 ms) that must still tick, pending signals
 *   (SIGUSR1 and SIGRTMIN+2 with value 77 for the process, SIGUSR2 for the thread: blocked, so they
 *   wait, then delivered once unblocked at check), nice 5 under SCHED_BATCH on CPU 0, umask 027,
 *   personality ADDR_NO_RANDOMIZE, parent-death signal SIGURG, child subreaper, no_new_privs, two
 *   seccomp filters in order (getpgid fails with ENOENT from the first, EIO from the second: the
 *   newest wins, so the order shows), oom_score_adj 500, CAP_NET_RAW dropped from the permitted set
 *   and CAP_SYS_BOOT from the bounding set. Run as root (the capability part needs it).
 * On check: every part is as set, and the timers and the pending signals fire.
 */
#include "victim.h"

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>

static volatile sig_atomic_t alarms, timer_ticks, timer_bad_value, usr1, usr2, rt_value = -1, rt_code;

static void on_alarm(int sig) { (void)sig; alarms++; }
static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	if (si->si_value.sival_int != 0x5eed) timer_bad_value++;
	timer_ticks++;
}
static void on_usr1(int sig) { (void)sig; usr1++; }
static void on_usr2(int sig) { (void)sig; usr2++; }
static void on_rt(int sig, siginfo_t *si, void *uc)
{
	(void)sig; (void)uc;
	rt_value = si->si_value.sival_int;
	rt_code = si->si_code;
}

static void handle(int sig, void (*fn)(int), void (*act)(int, siginfo_t *, void *))
{
	struct sigaction sa = { 0 };
	if (act) {
		sa.sa_sigaction = act;
		sa.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		sa.sa_handler = fn;
		sa.sa_flags = SA_RESTART;
	}
	sigaction(sig, &sa, NULL);
}

/* The signals kept pending across the checkpoint: blocked until the check. */
static void held_signals(int how)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGRTMIN + 2);
	sigprocmask(how, &set, NULL);
}

/* getpgid() fails with `err` under this filter. */
static int add_filter(int err)
{
	struct sock_filter insns[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getpgid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof insns / sizeof insns[0], insns };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

static uint64_t status_hex(const char *key)
{
	char line[256];
	uint64_t v = 0;
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, strlen(key)) == 0)
			v = strtoull(line + strlen(key) + 1, NULL, 16);
	fclose(f);
	return v;
}

static int read_int_file(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof buf, f))
		fail("read %s", path);
	if (f)
		fclose(f);
	return atoi(buf);
}

static void check_limit(int res, const char *name, rlim_t cur, rlim_t max)
{
	struct rlimit r;
	getrlimit(res, &r);
	if (r.rlim_cur != cur || r.rlim_max != max)
		fail("%s is %llu/%llu, not %llu/%llu", name, (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max,
		     (unsigned long long)cur, (unsigned long long)max);
}

static void wait_ticks(volatile sig_atomic_t *counter, int more, const char *what)
{
	int start = *counter;
	for (int i = 0; i < 200 && *counter < start + more; i++)
		victim_sleep_ms(10);
	if (*counter < start + more)
		fail("%s did not tick %d times in 2 s (from %d to %d)", what, more, start, (int)*counter);
}

static void check_state(void)
{
	check_limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", 200, 300);
	check_limit(RLIMIT_CORE, "RLIMIT_CORE", 0, 0);
	check_limit(RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE", 4096, 8192);
	if (sched_getscheduler(0) != SCHED_BATCH)
		fail("policy is %d, not SCHED_BATCH", sched_getscheduler(0));
	errno = 0;
	if (getpriority(PRIO_PROCESS, 0) != 5)
		fail("nice is %d, not 5", getpriority(PRIO_PROCESS, 0));
	cpu_set_t cpus;
	if (sched_getaffinity(0, sizeof cpus, &cpus) != 0 || CPU_COUNT(&cpus) != 1 || !CPU_ISSET(0, &cpus))
		fail("affinity is not CPU 0 alone (%d CPUs)", CPU_COUNT(&cpus));
	mode_t m = umask(0);
	umask(m);
	if (m != 027)
		fail("umask is %o, not 027", m);
	if ((personality(0xffffffff) & ADDR_NO_RANDOMIZE) == 0)
		fail("personality 0x%x lacks ADDR_NO_RANDOMIZE", personality(0xffffffff));
	int sig = 0;
	prctl(PR_GET_PDEATHSIG, &sig);
	if (sig != SIGURG)
		fail("parent-death signal is %d, not SIGURG", sig);
	int sub = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	if (!sub)
		fail("not a child subreaper");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		fail("no_new_privs is not set");
	if (status_hex("Seccomp_filters:") != 0x2)
		fail("%llu seccomp filters, not 2", (unsigned long long)status_hex("Seccomp_filters:"));
	errno = 0;
	if (getpgid(0) != -1 || errno != EIO)
		fail("getpgid gave errno %d, not EIO (the newest filter)", errno);
	if (read_int_file("/proc/self/oom_score_adj") != 500)
		fail("oom_score_adj is %d, not 500", read_int_file("/proc/self/oom_score_adj"));
	if (status_hex("CapPrm:") & (1ULL << CAP_NET_RAW))
		fail("CAP_NET_RAW is back in the permitted set");
	if (!(status_hex("CapPrm:") & (1ULL << CAP_SYS_ADMIN)))
		fail("CAP_SYS_ADMIN was lost from the permitted set");
	if (status_hex("CapBnd:") & (1ULL << CAP_SYS_BOOT))
		fail("CAP_SYS_BOOT is back in the bounding set");

	/* The signals still wait where they were queued: the process's, and this thread's. */
	uint64_t shared = status_hex("ShdPnd:"), mine = status_hex("SigPnd:");
	if (!(shared & (1ULL << (SIGUSR1 - 1))) || !(shared & (1ULL << (SIGRTMIN + 2 - 1))))
		fail("process-wide pending signals are 0x%llx (SIGUSR1 and SIGRTMIN+2 expected)", (unsigned long long)shared);
	if (!(mine & (1ULL << (SIGUSR2 - 1))))
		fail("the thread's pending signals are 0x%llx (SIGUSR2 expected)", (unsigned long long)mine);
	held_signals(SIG_UNBLOCK);
	if (usr1 != 1 || usr2 != 1)
		fail("after unblocking: SIGUSR1 delivered %d times, SIGUSR2 %d (1 each expected)", (int)usr1, (int)usr2);
	if (rt_value != 77 || rt_code != SI_QUEUE)
		fail("SIGRTMIN+2 came with value %d code %d, not 77 and SI_QUEUE", (int)rt_value, (int)rt_code);

	wait_ticks(&alarms, 5, "ITIMER_REAL");
	wait_ticks(&timer_ticks, 5, "the POSIX timer");
	if (timer_bad_value)
		fail("the POSIX timer's signal came with another sigval %d times", (int)timer_bad_value);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	struct rlimit lim[] = { { 200, 300 }, { 0, 0 }, { 4096, 8192 } };
	if (setrlimit(RLIMIT_NOFILE, &lim[0]) || setrlimit(RLIMIT_CORE, &lim[1]) || setrlimit(RLIMIT_MSGQUEUE, &lim[2]))
		fail("setrlimit: %s", strerror(errno));
	handle(SIGALRM, on_alarm, NULL);
	handle(SIGRTMIN + 1, NULL, on_timer);
	handle(SIGUSR1, on_usr1, NULL);
	handle(SIGUSR2, on_usr2, NULL);
	handle(SIGRTMIN + 2, NULL, on_rt);
	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	struct sigevent sev = { 0 };
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 1;
	sev.sigev_value.sival_int = 0x5eed;
	timer_t timer;
	struct itimerspec ts = { { 0, 30000000 }, { 0, 30000000 } };
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) || timer_settime(timer, 0, &ts, NULL))
		fail("timer_create: %s", strerror(errno));

	held_signals(SIG_BLOCK);
	kill(getpid(), SIGUSR1);
	syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2);
	sigqueue(getpid(), SIGRTMIN + 2, (union sigval){ .sival_int = 77 });

	cpu_set_t cpus;
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	struct sched_param sp = { 0 };
	if (sched_setaffinity(0, sizeof cpus, &cpus) || sched_setscheduler(0, SCHED_BATCH, &sp) || setpriority(PRIO_PROCESS, 0, 5))
		fail("scheduling: %s", strerror(errno));
	umask(027);
	personality(ADDR_NO_RANDOMIZE);
	prctl(PR_SET_PDEATHSIG, SIGURG);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	FILE *oom = fopen("/proc/self/oom_score_adj", "w");
	if (!oom || fprintf(oom, "500\n") < 0 || fclose(oom) != 0)
		fail("oom_score_adj: %s", strerror(errno));
	/* Capabilities: drop CAP_NET_RAW from every set, CAP_SYS_BOOT from the bounding set. */
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) == 0) {
		for (int i = 0; i < 1; i++) {
			data[i].effective &= ~(1u << CAP_NET_RAW);
			data[i].permitted &= ~(1u << CAP_NET_RAW);
			data[i].inheritable &= ~(1u << CAP_NET_RAW);
		}
		if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) || syscall(SYS_capset, &hdr, data))
			fail("capabilities: %s", strerror(errno));
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || add_filter(ENOENT) || add_filter(EIO))
		fail("seccomp: %s", strerror(errno));

	unsigned long n = 0;
	victim_ready();
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(20);
	}
	check_state();
	victim_finish();
}
