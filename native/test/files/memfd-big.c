/* memfd-big: a memfd of 9 MiB held as an fd, over the cap: its dump must be refused, naming it. */
#include "idle.h"
#include <sys/mman.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int fd = memfd_create("cryopod-big", 0);
	if (fd < 0 || ftruncate(fd, 9 << 20) != 0)
		exit(4);
	idle_until_check();
}
