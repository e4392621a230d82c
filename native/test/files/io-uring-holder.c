/*
 * io-uring-holder: a process holding an io_uring instance (fd), which Cryopod cannot save: its dump and
 * its preflight must refuse it by name. Otherwise a sleeper: progress every 20 ms, PASS on check.
 */
#include "idle.h"
#include <linux/io_uring.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	int ring = (int)syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		exit(4);
	idle_until_check();
}
