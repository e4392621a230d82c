/*
 * timerfd-holder: four timers that must come back as they were.
 *
 *   fired:    CLOCK_MONOTONIC, one-shot 5 ms, gone off before the dump and never read: 1 expiration
 *             waits (the unread expirations come back)
 *   long:     CLOCK_MONOTONIC, relative, 1 hour: after restore a little under 1 hour left, no interval
 *   abs:      CLOCK_REALTIME, TFD_TIMER_ABSTIME at now + 1 hour: still absolute (fdinfo), ~1 hour left
 *   periodic: CLOCK_BOOTTIME, every 50 ms: after restore it fires on schedule again, interval kept
 */
#include "victim.h"
#include <poll.h>
#include <sys/timerfd.h>

static int settime_flags_of(int fd)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "re");
	int flags = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "settime flags: %o", &flags) == 1)
			break;
	if (f)
		fclose(f);
	return flags;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int fired = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int lng = timerfd_create(CLOCK_MONOTONIC, 0);
	int abs = timerfd_create(CLOCK_REALTIME, 0);
	int periodic = timerfd_create(CLOCK_BOOTTIME, 0);
	if (fired < 0 || lng < 0 || abs < 0 || periodic < 0)
		exit(4);
	struct itimerspec five_ms = { { 0, 0 }, { 0, 5000000 } }, hour = { { 0, 0 }, { 3600, 0 } };
	struct itimerspec every = { { 0, 50000000 }, { 0, 50000000 } }, at;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	at = (struct itimerspec){ { 0, 0 }, { now.tv_sec + 3600, now.tv_nsec } };
	if (timerfd_settime(fired, 0, &five_ms, NULL) || timerfd_settime(lng, 0, &hour, NULL) ||
	    timerfd_settime(abs, TFD_TIMER_ABSTIME, &at, NULL) || timerfd_settime(periodic, 0, &every, NULL))
		exit(4);
	struct pollfd pf = { .fd = fired, .events = POLLIN };
	if (poll(&pf, 1, 5000) != 1)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);

	uint64_t ticks = 0;
	if (read(fired, &ticks, sizeof ticks) != sizeof ticks || ticks != 1)
		fail("fired timer: read %llu expirations, expected 1 (errno %d)", (unsigned long long)ticks, errno);
	struct itimerspec cur;
	if (timerfd_gettime(lng, &cur) || cur.it_value.tv_sec < 3000 || cur.it_value.tv_sec >= 3600 || cur.it_interval.tv_sec || cur.it_interval.tv_nsec)
		fail("1-hour timer: %ld s left (interval %ld s), expected a little under 3600 and none", (long)cur.it_value.tv_sec, (long)cur.it_interval.tv_sec);
	if (timerfd_gettime(abs, &cur) || cur.it_value.tv_sec < 3000 || cur.it_value.tv_sec >= 3600)
		fail("absolute timer: %ld s left, expected a little under 3600", (long)cur.it_value.tv_sec);
	if (settime_flags_of(abs) != TFD_TIMER_ABSTIME)
		fail("absolute timer: settime flags %o, expected TFD_TIMER_ABSTIME", settime_flags_of(abs));
	if (timerfd_gettime(periodic, &cur) || cur.it_interval.tv_sec != 0 || cur.it_interval.tv_nsec != 50000000)
		fail("periodic timer: interval %ld.%09ld, expected 0.050000000", (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec);
	/* On schedule: read what piled up, then the next expiration comes within about one period. */
	if (read(periodic, &ticks, sizeof ticks) != sizeof ticks)
		fail("periodic timer: read failed: %s", strerror(errno));
	double t0 = victim_now();
	struct pollfd next = { .fd = periodic, .events = POLLIN };
	if (poll(&next, 1, 2000) != 1 || read(periodic, &ticks, sizeof ticks) != sizeof ticks || ticks < 1)
		fail("periodic timer: no expiration within 2 s after the first read (disarmed?)");
	double waited = victim_now() - t0;
	if (waited > 1.0) /* one 50 ms period, with room for a loaded machine */
		fail("periodic timer: the next expiration took %.3f s, expected about one 50 ms period", waited);
	victim_finish();
}
