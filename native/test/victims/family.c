/*
 * family: a process tree whose every process has threads, for the dumper's crash tests. The root forks
 * two children; each of the three processes then runs two worker threads besides its main one. Every
 * thread counts in its own slot every 5 ms; each process's main thread writes the counts of its three
 * threads to <workdir>/alive-<index> (0: the root) every 20 ms. A thread that stopped, or that died with
 * its process, stops its count: the test sees which. Children die with the root (PR_SET_PDEATHSIG).
 *   ready: "<root pid> <child pid> <child pid>"
 */
#include "victim.h"
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>

#define WORKERS 2

static volatile unsigned long counts[WORKERS + 1];

static void *worker(void *arg)
{
	volatile unsigned long *mine = arg;
	for (;;) {
		(*mine)++;
		victim_sleep_ms(5);
	}
	return NULL;
}

static __attribute__((noreturn)) void live(int index)
{
	pthread_t t;
	for (int i = 1; i <= WORKERS; i++)
		if (pthread_create(&t, NULL, worker, (void *)&counts[i]) != 0)
			exit(4);
	char name[32], line[96];
	snprintf(name, sizeof(name), "alive-%d", index);
	for (;;) {
		counts[0]++;
		snprintf(line, sizeof(line), "%lu %lu %lu\n", counts[0], counts[1], counts[2]);
		victim_write_file(name, line);
		victim_sleep_ms(20);
	}
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	pid_t kids[2];
	pid_t root = getpid();
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			exit(4);
		if (kids[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != root)
				_exit(5);
			live(i + 1);
		}
	}
	char ready[64];
	snprintf(ready, sizeof(ready), "%d %d %d\n", (int)root, (int)kids[0], (int)kids[1]);
	if (victim_write_file("ready", ready) != 0)
		exit(3);
	live(0);
}
