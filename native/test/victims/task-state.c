/*
 * task-state: per-task kernel state that is not memory, read back after restore.
 *
 *   rseq             glibc registered it; after restore registering the same area again must fail with
 *                    EBUSY (it is registered), and sched_getcpu() (read from the rseq area) must agree with
 *                    the getcpu syscall on every CPU the task is pinned to in turn
 *   TLS              a __thread variable (through the fs base) keeps its value
 *   robust list      get_robust_list(0) gives the same head and length
 *   clear_child_tid  prctl(PR_GET_TID_ADDRESS) gives the same address
 *   umask            027, set at start
 *   personality      ADDR_NO_RANDOMIZE is not set at start; whatever it was, it stays
 *   comm             prctl(PR_SET_NAME, "cryo-task") at start; PR_GET_NAME gives it back
 */
#include "victim.h"
#include <sched.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/rseq.h> /* glibc >= 2.35: __rseq_offset, __rseq_size, RSEQ_SIG */
#include <sys/stat.h>
#include <sys/syscall.h>

static __thread uint64_t tls_value[4];

static void *thread_pointer(void)
{
	void *tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	pattern_fill(tls_value, sizeof(tls_value), 0x715);
	umask(027);
	prctl(PR_SET_NAME, "cryo-task", 0, 0, 0);
	int pers = personality(0xffffffff);

	void *robust_head0;
	size_t robust_len0;
	syscall(SYS_get_robust_list, 0, &robust_head0, &robust_len0);
	int *tid_addr0 = NULL;
	prctl(PR_GET_TID_ADDRESS, &tid_addr0, 0, 0, 0);
	int have_rseq = __rseq_size > 0;
	void *rseq_area = have_rseq ? (char *)thread_pointer() + __rseq_offset : NULL;

	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);

	if (pattern_verify(tls_value, sizeof(tls_value), 0x715) >= 0)
		fail("__thread variable changed (fs base %p)", thread_pointer());

	if (have_rseq) {
		unsigned int len = __rseq_size < 32 ? 32 : __rseq_size;
		long rc = syscall(SYS_rseq, rseq_area, len, 0, RSEQ_SIG);
		if (rc == 0)
			fail("rseq was not registered after restore (registering %p again succeeded)", rseq_area);
		else if (errno != EBUSY)
			fail("rseq re-registration check: expected EBUSY, got %s", strerror(errno));
		cpu_set_t allowed;
		if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
			for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
				if (!CPU_ISSET(cpu, &allowed))
					continue;
				cpu_set_t one;
				CPU_ZERO(&one);
				CPU_SET(cpu, &one);
				if (sched_setaffinity(0, sizeof(one), &one) != 0)
					continue;
				unsigned int kcpu = ~0u;
				syscall(SYS_getcpu, &kcpu, NULL, NULL);
				int ucpu = sched_getcpu();
				if ((int)kcpu != ucpu)
					fail("pinned to cpu %d: sched_getcpu() (rseq) says %d, getcpu says %u", cpu, ucpu, kcpu);
			}
			sched_setaffinity(0, sizeof(allowed), &allowed);
		}
	}

	void *robust_head;
	size_t robust_len;
	if (syscall(SYS_get_robust_list, 0, &robust_head, &robust_len) != 0)
		fail("get_robust_list: %s", strerror(errno));
	else if (robust_head != robust_head0 || robust_len != robust_len0)
		fail("robust list is %p/%zu, was %p/%zu", robust_head, robust_len, robust_head0, robust_len0);

	int *tid_addr = NULL;
	if (prctl(PR_GET_TID_ADDRESS, &tid_addr, 0, 0, 0) != 0)
		fail("PR_GET_TID_ADDRESS: %s", strerror(errno));
	else if (tid_addr != tid_addr0)
		fail("clear_child_tid is %p, was %p", (void *)tid_addr, (void *)tid_addr0);

	mode_t m = umask(022);
	if (m != 027)
		fail("umask is %03o, expected 027", m);
	if (personality(0xffffffff) != pers)
		fail("personality is %#x, was %#x", personality(0xffffffff), pers);
	char name[17] = { 0 };
	prctl(PR_GET_NAME, name, 0, 0, 0);
	if (strcmp(name, "cryo-task") != 0)
		fail("comm is \"%s\", expected \"cryo-task\"", name);
	char note[64];
	snprintf(note, sizeof(note), "rseq=%d\n", have_rseq);
	victim_write_file("stats", note);
	victim_finish();
}
