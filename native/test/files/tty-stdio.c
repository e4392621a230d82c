/*
 * tty-stdio: a process whose stdin, stdout and stderr are a terminal (a shell job, `kubectl run -it`),
 * started under `script` which holds the pseudo-terminal outside its tree. Every 20 ms it writes its
 * progress; on check it verifies that fds 0-2 are open and that fd 1 is writable (after a restore they
 * are whatever the restorer re-attached), and writes "after-restore" to stdout.
 */
#include "victim.h"
#include <signal.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	signal(SIGHUP, SIG_IGN);
	if (!isatty(1))
		exit(4);
	victim_ready();
	unsigned long long n = 0;
	while (!victim_check_requested()) {
		victim_progress(++n);
		victim_sleep_ms(20);
	}
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0)
			fail("fd %d is closed after restore", fd);
	if (write(1, "after-restore\n", 14) != 14)
		fail("write to stdout failed: %s", strerror(errno));
	victim_finish();
}
