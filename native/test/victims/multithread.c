/*
 * multithread: a process with a second thread (pthread). Both threads must survive dump and restore.
 *
 * The worker fills a 16 KiB array on its own stack and a __thread variable with a pattern, then counts
 * every 10 ms and re-verifies both (a failure is recorded in memory). The main thread writes
 * <workdir>/progress every 50 ms with the sum of both counters. On check the main thread verifies that the
 * worker is still counting (its counter moves within 1 s), that the worker saw its stack and TLS intact,
 * that both threads' TLS and its own stack pattern are intact, and that the process has 2 threads.
 */
#include "victim.h"
#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>

static volatile unsigned long worker_ticks;
static volatile int worker_bad;
static __thread uint64_t tls[8];

static void *worker(void *arg)
{
	(void)arg;
	uint64_t stack_buf[2048];
	pattern_fill(stack_buf, sizeof(stack_buf), 0x3333);
	pattern_fill(tls, sizeof(tls), 0x7777);
	for (;;) {
		__asm__ volatile("" : : "r"(stack_buf) : "memory");
		if (pattern_verify(stack_buf, sizeof(stack_buf), 0x3333) >= 0 || pattern_verify(tls, sizeof(tls), 0x7777) >= 0)
			worker_bad = 1;
		worker_ticks++;
		victim_sleep_ms(10);
	}
	return NULL;
}

static int count_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	if (d)
		closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	pattern_fill(tls, sizeof(tls), 0x5555);
	uint64_t stack_buf[1024];
	pattern_fill(stack_buf, sizeof(stack_buf), 0x4444);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		exit(4);
	while (worker_ticks == 0)
		victim_sleep_ms(1);
	victim_ready();
	unsigned long main_ticks = 0;
	while (!victim_check_requested()) {
		main_ticks++;
		victim_progress(main_ticks + worker_ticks);
		victim_sleep_ms(50);
	}
	unsigned long t0 = worker_ticks;
	for (int i = 0; i < 100 && worker_ticks == t0; i++)
		victim_sleep_ms(10);
	if (worker_ticks == t0)
		fail("the worker thread is not running (its counter stays at %lu)", t0);
	if (worker_bad)
		fail("the worker thread found its stack or TLS changed");
	if (main_ticks == 0)
		fail("the main thread made no progress");
	if (pattern_verify(tls, sizeof(tls), 0x5555) >= 0)
		fail("the main thread's TLS changed");
	__asm__ volatile("" : : "r"(stack_buf) : "memory");
	if (pattern_verify(stack_buf, sizeof(stack_buf), 0x4444) >= 0)
		fail("the main thread's stack array changed");
	int n = count_threads();
	if (n != 2)
		fail("the process has %d threads, expected 2", n);
	victim_finish();
}
