/*
 * signalfd-holder: SIGUSR1 blocked and read through a signalfd whose mask is SIGUSR1 and SIGUSR2. After
 * restore the signalfd's mask is the same, and a SIGUSR1 sent to the process is read from it.
 */
#include "victim.h"
#include <signal.h>
#include <sys/signalfd.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	sigset_t blocked, watched;
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	watched = blocked;
	sigaddset(&watched, SIGUSR2);
	if (sigprocmask(SIG_BLOCK, &blocked, NULL) != 0)
		exit(4);
	int sfd = signalfd(-1, &watched, SFD_NONBLOCK);
	if (sfd < 0)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	char path[64], line[256];
	unsigned long long mask = 0;
	snprintf(path, sizeof path, "/proc/self/fdinfo/%d", sfd);
	FILE *f = fopen(path, "re");
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "sigmask: %llx", &mask) == 1)
			break;
	if (f)
		fclose(f);
	unsigned long long want = (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1));
	if (mask != want)
		fail("signalfd mask %llx, expected %llx", mask, want);
	kill(getpid(), SIGUSR1);
	struct signalfd_siginfo si;
	if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR1)
		fail("no SIGUSR1 read from the signalfd (%s)", strerror(errno));
	victim_finish();
}
