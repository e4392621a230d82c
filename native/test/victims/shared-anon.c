/*
 * shared-anon: shared anonymous memory (mmap MAP_SHARED|MAP_ANONYMOUS, 1 MiB of pattern) survives dump and
 * restore: on check it must still hold its pattern, still be a shared (rw-s) mapping at the same address,
 * and take writes. Writes <workdir>/progress every 50 ms.
 */
#include "victim.h"
#include <sys/mman.h>

#define SIZE (1u << 20)

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	unsigned char *shm = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED)
		exit(4);
	pattern_fill(shm, SIZE, 0x5a5a);
	victim_ready();
	unsigned long n = 0;
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(50);
	}
	long bad = pattern_verify(shm, SIZE, 0x5a5a);
	if (bad >= 0)
		fail("the shared memory differs from its pattern at offset %ld", bad);
	char perms[5];
	uintptr_t start, end;
	if (maps_find((uintptr_t)shm, SIZE, perms, NULL, 0, &start, &end) != 0)
		fail("no mapping covers %p-%p any more", (void *)shm, (void *)(shm + SIZE));
	else if (strcmp(perms, "rw-s") != 0 || start != (uintptr_t)shm || end != (uintptr_t)shm + SIZE)
		fail("the shared memory is now %#lx-%#lx %s, expected %p-%p rw-s", (unsigned long)start, (unsigned long)end,
		     perms, (void *)shm, (void *)(shm + SIZE));
	memset(shm, 0x11, SIZE);
	if (shm[SIZE - 1] != 0x11)
		fail("a write to the shared memory did not stick");
	victim_finish();
}
