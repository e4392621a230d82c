/*
 * shared-anon: a process with shared anonymous memory (mmap MAP_SHARED|MAP_ANONYMOUS, 1 MiB of pattern),
 * for the negative test: Cryopod refuses it (EUNSUPPORTED) and must leave the process running; it writes
 * <workdir>/progress every 50 ms and on check verifies the shared memory still holds its pattern.
 */
#include "victim.h"
#include <sys/mman.h>

#define SIZE (1u << 20)

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	void *shm = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		exit(4);
	pattern_fill(shm, SIZE, 0x5a5a);
	victim_ready();
	unsigned long n = 0;
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(50);
	}
	if (pattern_verify(shm, SIZE, 0x5a5a) >= 0)
		fail("the shared memory lost its pattern");
	victim_finish();
}
