/*
 * eventfd-holder: two eventfds with values in them.
 *
 *   counter: EFD_NONBLOCK, value 0x100000005 (above 32 bits: eventfd2's initval could not hold it)
 *   sem:     EFD_SEMAPHORE, value 3 (each read takes 1)
 *
 * After restore the check reads them: counter gives the whole value once and is then empty (EAGAIN,
 * so still non-blocking); sem gives 1 three times (semaphore mode kept) and then is empty.
 */
#include "victim.h"
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int counter = eventfd(0, EFD_NONBLOCK);
	int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	uint64_t v = 0x100000005ULL;
	if (counter < 0 || sem < 0 || write(counter, &v, sizeof v) != sizeof v)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	uint64_t got = 0;
	if (read(counter, &got, sizeof got) != sizeof got || got != v)
		fail("counter eventfd read %llu, expected %llu", (unsigned long long)got, (unsigned long long)v);
	if (read(counter, &got, sizeof got) != -1 || errno != EAGAIN)
		fail("counter eventfd: a second read did not fail with EAGAIN (not empty, or not non-blocking)");
	for (int i = 0; i < 3; i++)
		if (read(sem, &got, sizeof got) != sizeof got || got != 1)
			fail("semaphore eventfd read %d gave %llu, expected 1", i, (unsigned long long)got);
	if (read(sem, &got, sizeof got) != -1 || errno != EAGAIN)
		fail("semaphore eventfd: a fourth read did not fail with EAGAIN");
	victim_finish();
}
