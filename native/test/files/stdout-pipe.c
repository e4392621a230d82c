/*
 * stdout-pipe: a process whose stdout is a pipe read by a process outside its tree (as in every
 * container: the runtime's shim reads it). Started as `stdout-pipe <workdir>` with stdout on that pipe
 * (it keeps fds 0-2, unlike the other victims' stdio on /dev/null).
 *
 * Every 20 ms it writes "tick N\n" to stdout and its progress; on check it writes "after-restore\n" to
 * stdout and verifies that fd 1 is still a pipe, writable. The test reads the lines from the pipe the
 * restore re-attached.
 */
#include "victim.h"
#include <signal.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	victim_ready();
	unsigned long long n = 0;
	while (!victim_check_requested()) {
		printf("tick %llu\n", ++n);
		victim_progress(n);
		victim_sleep_ms(20);
	}
	struct stat st;
	if (fstat(1, &st) != 0 || !S_ISFIFO(st.st_mode))
		fail("fd 1 is not a pipe after restore");
	if (printf("after-restore %llu\n", n) < 0)
		fail("write to stdout failed: %s", strerror(errno));
	victim_finish();
}
