/*
 * sleeper: a task that is asleep in the kernel when it is dumped.
 *
 * It alternates a relative nanosleep(500 ms) (on EINTR it sleeps on for the remaining time, as careful
 * programs do) and an absolute clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, now + 500 ms) (on EINTR it
 * sleeps again until the same deadline). Each logical sleep must last at least its 500 ms: a restore that
 * makes the interrupted sleep return early, or that loses the remaining time, fails it. After every sleep it
 * writes the count of completed sleeps to <workdir>/progress.
 *
 * On check: the count kept going after ready, no sleep was short, the state struct is intact.
 */
#include "victim.h"

#define SLEEP_NS 500000000L

static struct {
	uint64_t vals[64];
	uint64_t sum;
} state;

static struct timespec ts_add(struct timespec a, long ns)
{
	a.tv_nsec += ns;
	while (a.tv_nsec >= 1000000000L) {
		a.tv_nsec -= 1000000000L;
		a.tv_sec++;
	}
	return a;
}

static double ts_sec(struct timespec t)
{
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	pattern_fill(state.vals, sizeof(state.vals), 0x5100);
	state.sum = checksum(state.vals, sizeof(state.vals));

	unsigned long completed = 0, eintr = 0;
	victim_ready();
	victim_progress(0);
	while (!victim_check_requested()) {
		struct timespec start, end;
		clock_gettime(CLOCK_MONOTONIC, &start);
		if (completed % 2 == 0) {
			struct timespec req = { 0, SLEEP_NS }, rem;
			for (;;) {
				rem = (struct timespec){ -1, -1 };
				if (nanosleep(&req, &rem) == 0)
					break;
				if (errno != EINTR) {
					fail("nanosleep: %s", strerror(errno));
					break;
				}
				eintr++;
				if (rem.tv_sec < 0 || rem.tv_nsec < 0 || rem.tv_nsec >= 1000000000L ||
				    ts_sec(rem) > ts_sec(req)) {
					fail("nanosleep returned EINTR with a bad remaining time {%ld, %ld}",
					     (long)rem.tv_sec, rem.tv_nsec);
					break;
				}
				req = rem;
			}
		} else {
			struct timespec deadline = ts_add(start, SLEEP_NS);
			int err;
			while ((err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL)) == EINTR)
				eintr++;
			if (err != 0)
				fail("clock_nanosleep: %s", strerror(err));
		}
		clock_gettime(CLOCK_MONOTONIC, &end);
		double slept = ts_sec(end) - ts_sec(start);
		if (slept < 0.4999)
			fail("sleep %lu (%s) lasted %.3f s, less than 0.5 s", completed,
			     completed % 2 == 0 ? "nanosleep" : "clock_nanosleep abs", slept);
		completed++;
		victim_progress(completed);
	}

	if (completed < 2)
		fail("only %lu sleeps completed", completed);
	if (checksum(state.vals, sizeof(state.vals)) != state.sum)
		fail("state checksum differs");
	char note[64];
	snprintf(note, sizeof(note), "%lu sleeps, %lu EINTR\n", completed, eintr);
	victim_write_file("stats", note);
	victim_finish();
}
