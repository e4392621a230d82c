/*
 * sigaction: signal state survives dump and restore.
 *
 *   SIGUSR1  sa_sigaction handler, SA_SIGINFO|SA_RESTART|SA_ONSTACK, sa_mask {SIGINT, SIGQUIT, SIGRTMIN+3};
 *            the handler counts, and records the blocked mask it runs with and whether it runs on the
 *            alternate stack
 *   altstack sigaltstack() on a 64 KiB static buffer
 *   SIGPIPE  SIG_IGN
 *   SIGUSR2  blocked with sigprocmask
 *
 * The test sends SIGUSR1 once before the dump; the victim writes <workdir>/got-usr1 when its counter is 1.
 * On check it sends SIGUSR1 to itself: the counter must be 2, the handler must have run with sa_mask
 * blocked and on the alternate stack, and sigaction(SIGUSR1, NULL, &old) must give back the same handler,
 * flags and mask; SIGPIPE is still ignored, SIGUSR2 still blocked, the altstack the same.
 */
#include "victim.h"
#include <signal.h>

#define ALT_SIZE (64u << 10)

static volatile sig_atomic_t count;
static volatile sig_atomic_t mask_ok, on_altstack, info_ok;
static unsigned char altstack[ALT_SIZE] __attribute__((aligned(16)));

static void on_usr1(int sig, siginfo_t *info, void *uc)
{
	(void)uc;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	mask_ok = sigismember(&cur, SIGINT) && sigismember(&cur, SIGQUIT) && sigismember(&cur, SIGRTMIN + 3) &&
		  sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGUSR2);
	unsigned char here;
	on_altstack = &here >= altstack && &here < altstack + ALT_SIZE;
	info_ok = sig == SIGUSR1 && info->si_signo == SIGUSR1 && info->si_code == SI_USER;
	count++;
}

static int same_mask(const sigset_t *a, const sigset_t *b)
{
	for (int s = 1; s < NSIG; s++) {
		if (s == 32 || s == 33) /* glibc-internal, never in a user mask */
			continue;
		if (sigismember(a, s) != sigismember(b, s))
			return 0;
	}
	return 1;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);

	stack_t ss = { .ss_sp = altstack, .ss_size = ALT_SIZE, .ss_flags = 0 };
	if (sigaltstack(&ss, NULL) != 0)
		exit(4);
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGQUIT);
	sigaddset(&sa.sa_mask, SIGRTMIN + 3);
	if (sigaction(SIGUSR1, &sa, NULL) != 0)
		exit(4);
	struct sigaction installed;
	sigaction(SIGUSR1, NULL, &installed); /* as the kernel reports it (with SA_RESTORER) */
	signal(SIGPIPE, SIG_IGN);
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR2);
	sigprocmask(SIG_BLOCK, &block, NULL);

	victim_ready();
	int reported = 0;
	while (!victim_check_requested()) {
		if (count == 1 && !reported) {
			char buf[64];
			snprintf(buf, sizeof(buf), "%d mask_ok=%d altstack=%d\n", (int)count, (int)mask_ok,
				 (int)on_altstack);
			victim_write_file("got-usr1", buf);
			reported = 1;
		}
		victim_sleep_ms(20);
	}

	if (count != 1)
		fail("before the self-signal the counter is %d, expected 1", (int)count);
	mask_ok = on_altstack = info_ok = 0;
	kill(getpid(), SIGUSR1);
	if (count != 2)
		fail("after kill(getpid(), SIGUSR1) the counter is %d, expected 2", (int)count);
	if (!mask_ok)
		fail("the handler ran without sa_mask (and SIGUSR1, SIGUSR2) blocked");
	if (!on_altstack)
		fail("the handler did not run on the alternate signal stack");
	if (!info_ok)
		fail("the handler got a wrong siginfo");

	struct sigaction now;
	if (sigaction(SIGUSR1, NULL, &now) != 0)
		fail("sigaction(SIGUSR1, NULL) failed: %s", strerror(errno));
	else {
		if (now.sa_sigaction != installed.sa_sigaction)
			fail("SIGUSR1 handler is %p, expected %p", (void *)now.sa_sigaction,
			     (void *)installed.sa_sigaction);
		if (now.sa_flags != installed.sa_flags)
			fail("SIGUSR1 sa_flags are %#x, expected %#x", now.sa_flags, installed.sa_flags);
		if (now.sa_restorer != installed.sa_restorer)
			fail("SIGUSR1 sa_restorer is %p, expected %p", (void *)now.sa_restorer,
			     (void *)installed.sa_restorer);
		if (!same_mask(&now.sa_mask, &installed.sa_mask))
			fail("SIGUSR1 sa_mask differs");
	}
	struct sigaction pipe_now;
	sigaction(SIGPIPE, NULL, &pipe_now);
	if (pipe_now.sa_handler != SIG_IGN)
		fail("SIGPIPE is no longer ignored");
	struct sigaction term_now;
	sigaction(SIGTERM, NULL, &term_now);
	if (term_now.sa_handler != SIG_DFL)
		fail("SIGTERM is no longer SIG_DFL");

	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGUSR2))
		fail("SIGUSR2 is no longer blocked");
	if (sigismember(&cur, SIGUSR1) || sigismember(&cur, SIGINT))
		fail("SIGUSR1 or SIGINT became blocked");

	stack_t cur_ss;
	if (sigaltstack(NULL, &cur_ss) != 0)
		fail("sigaltstack failed: %s", strerror(errno));
	else if (cur_ss.ss_sp != altstack || cur_ss.ss_size != ALT_SIZE || (cur_ss.ss_flags & SS_DISABLE))
		fail("alternate stack is %p size %zu flags %#x, expected %p size %u", cur_ss.ss_sp, cur_ss.ss_size,
		     cur_ss.ss_flags, (void *)altstack, ALT_SIZE);
	victim_finish();
}
