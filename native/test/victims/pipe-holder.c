/*
 * pipe-holder: a process holding both ends of a pipe with bytes in flight.
 *
 * At start it writes a backlog of 64 tokens (u64 1..64) into its pipe. Every 50 ms it writes the next token
 * and reads the oldest one, which must be the next in order; so at any moment, the dump included, 64
 * tokens sit in the pipe. After restore the pipe must be there with the same bytes queued: the tokens go
 * on in order. Writes <workdir>/progress; on check it verifies the order and the backlog once more.
 */
#include "victim.h"
#include <sys/ioctl.h>

#define BACKLOG 64

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int p[2];
	if (pipe(p) != 0)
		exit(4);
	uint64_t next_write = 1, next_read = 1;
	for (int i = 0; i < BACKLOG; i++, next_write++)
		if (write(p[1], &next_write, sizeof(next_write)) != sizeof(next_write))
			exit(4);
	victim_ready();
	while (!victim_check_requested()) {
		uint64_t got = 0;
		if (write(p[1], &next_write, sizeof(next_write)) != sizeof(next_write)) {
			fail("write of token %llu to the pipe failed: %s", (unsigned long long)next_write, strerror(errno));
			victim_finish();
		}
		next_write++;
		if (read(p[0], &got, sizeof(got)) != sizeof(got) || got != next_read) {
			fail("read token %llu from the pipe, expected %llu", (unsigned long long)got,
			     (unsigned long long)next_read);
			victim_finish();
		}
		next_read++;
		victim_progress(next_read - 1);
		victim_sleep_ms(50);
	}
	int queued = 0;
	if (ioctl(p[0], FIONREAD, &queued) == 0 && queued != BACKLOG * (int)sizeof(uint64_t))
		fail("%d bytes queued in the pipe, expected %d", queued, BACKLOG * (int)sizeof(uint64_t));
	for (int i = 0; i < BACKLOG; i++, next_read++) {
		uint64_t got = 0;
		if (read(p[0], &got, sizeof(got)) != sizeof(got) || got != next_read) {
			fail("draining: read token %llu, expected %llu", (unsigned long long)got, (unsigned long long)next_read);
			break;
		}
	}
	if (next_read < 2)
		fail("no progress");
	victim_finish();
}
