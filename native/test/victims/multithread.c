/*
 * multithread: a process with a second thread, for the negative test. Cryopod refuses to dump it
 * (EMULTITHREAD) and must leave both threads running: the main thread writes <workdir>/progress every
 * 50 ms with the sum of both threads' counters; on check it verifies that both counters moved.
 */
#include "victim.h"
#include <pthread.h>

static volatile unsigned long worker_ticks;

static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		worker_ticks++;
		victim_sleep_ms(10);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	pthread_t t;
	if (pthread_create(&t, NULL, worker, NULL) != 0)
		exit(4);
	while (worker_ticks == 0)
		victim_sleep_ms(1);
	victim_ready();
	unsigned long main_ticks = 0, worker_at_ready = worker_ticks;
	while (!victim_check_requested()) {
		main_ticks++;
		victim_progress(main_ticks + worker_ticks);
		victim_sleep_ms(50);
	}
	if (main_ticks == 0)
		fail("the main thread made no progress");
	if (worker_ticks <= worker_at_ready)
		fail("the worker thread made no progress");
	victim_finish();
}
