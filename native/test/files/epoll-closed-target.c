/*
 * epoll-closed-target: an epoll whose target eventfd was closed after a dup kept the file alive, so the
 * registration stays under a number that no longer holds it (and one with two duplicate fds
 * registered, built as epoll-dup-target with -DDUP_MODE): the dump and the preflight must refuse it,
 * naming the target.
 */
#include "idle.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
#ifdef DUP_MODE
	int dup_mode = 1;
#else
	int dup_mode = 0;
#endif
	int ep = epoll_create1(0);
	int e = eventfd(0, 0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 1 };
	if (ep < 0 || e < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev) != 0)
		exit(4);
	int keep = dup(e);
	if (dup_mode) {
		if (epoll_ctl(ep, EPOLL_CTL_ADD, keep, &ev) != 0)
			exit(4);
	} else {
		close(e);
	}
	idle_until_check();
}
