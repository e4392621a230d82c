/*
 * pipe-holder: a process holding both ends of a pipe, for the negative test. Cryopod cannot dump pipes yet
 * (EUNSUPPORTED) and must leave it running: it passes a token through its pipe and writes
 * <workdir>/progress every 50 ms; on check it verifies the pipe still works.
 */
#include "victim.h"

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int p[2];
	if (pipe(p) != 0)
		exit(4);
	victim_ready();
	unsigned long n = 0;
	while (!victim_check_requested()) {
		unsigned long got = 0;
		n++;
		if (write(p[1], &n, sizeof(n)) != sizeof(n) || read(p[0], &got, sizeof(got)) != sizeof(got) || got != n) {
			fail("the pipe lost token %lu", n);
			victim_finish();
		}
		victim_progress(n);
		victim_sleep_ms(50);
	}
	if (n == 0)
		fail("no progress");
	victim_finish();
}
