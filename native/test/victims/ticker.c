/*
 * ticker: a small, mostly idle task for the crash-safety tests, dumped many times a run.
 *
 * 8 MiB of patterned memory (so a page drain takes long enough for a random kill to land in it), then a
 * loop: sleep 5 ms, write the tick count to <workdir>/progress. It keeps the pattern's checksum and
 * checks it on request, so a task "put back" with its memory or registers damaged fails its check. It
 * never handles or blocks a signal: a SIGTRAP or SIGSEGV it was not sent kills it, which its holder
 * (the test's sh) records.
 */
#include "victim.h"

#define SIZE (8u << 20)

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	unsigned char *mem = malloc(SIZE);
	if (!mem)
		return 3;
	pattern_fill(mem, SIZE, 42);
	uint64_t sum = checksum(mem, SIZE);
	victim_ready();
	unsigned long long ticks = 0;
	while (!victim_check_requested()) {
		victim_sleep_ms(5);
		victim_progress(++ticks);
	}
	if (checksum(mem, SIZE) != sum || pattern_verify(mem, SIZE, 42) >= 0)
		fail("memory changed under the dumps");
	victim_finish();
}
