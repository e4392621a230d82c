/*
 * epoll-holder: an epoll set with three targets of three kinds of registration, and a nested epoll.
 *
 *   ready (eventfd, value 1)  EPOLLIN,                data 0xdeadbeefcafe1234 (all 64 bits)
 *   pipe read end (empty)     EPOLLIN | EPOLLET,      data 7
 *   later (eventfd, 0)        EPOLLIN | EPOLLONESHOT, data 9
 *   outer epoll               watches the epoll above (EPOLLIN, data 42): restored after it
 *
 * After restore the check waits on the set: only `ready` is reported, with its data; a byte written to
 * the pipe is reported once (edge-triggered: not again without new bytes); `later`, written to, is
 * reported once and never again (one-shot); the outer epoll reports the inner one as readable.
 */
#include "victim.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int ep, ready, later, pfd[2], outer;

static int wait_one(int fd, struct epoll_event *ev)
{
	return epoll_wait(fd, ev, 1, 0);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ready = eventfd(1, EFD_NONBLOCK);
	later = eventfd(0, EFD_NONBLOCK);
	outer = epoll_create1(0);
	if (ep < 0 || ready < 0 || later < 0 || outer < 0 || pipe2(pfd, O_NONBLOCK) != 0)
		exit(4);
	struct epoll_event a = { .events = EPOLLIN, .data.u64 = 0xdeadbeefcafe1234ULL };
	struct epoll_event b = { .events = EPOLLIN | EPOLLET, .data.u64 = 7 };
	struct epoll_event c = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 9 };
	struct epoll_event d = { .events = EPOLLIN, .data.u64 = 42 };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, ready, &a) || epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &b) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, later, &c) || epoll_ctl(outer, EPOLL_CTL_ADD, ep, &d))
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);

	struct epoll_event ev;
	int n = wait_one(outer, &ev);
	if (n != 1 || ev.data.u64 != 42)
		fail("outer epoll: %d events (data %llu), expected the inner epoll (42)", n, (unsigned long long)ev.data.u64);
	n = epoll_wait(ep, &ev, 1, 0);
	if (n != 1 || ev.data.u64 != 0xdeadbeefcafe1234ULL)
		fail("first wait: %d events, data %llx, expected the ready eventfd", n, (unsigned long long)ev.data.u64);
	uint64_t v;
	if (read(ready, &v, sizeof v) != sizeof v || v != 1)
		fail("ready eventfd lost its value");
	if ((n = wait_one(ep, &ev)) != 0)
		fail("after draining: %d events, expected none (data %llu)", n, (unsigned long long)ev.data.u64);
	if (write(pfd[1], "x", 1) != 1)
		fail("write to the pipe failed");
	if ((n = wait_one(ep, &ev)) != 1 || ev.data.u64 != 7)
		fail("pipe: %d events (data %llu), expected 7", n, (unsigned long long)ev.data.u64);
	if ((n = wait_one(ep, &ev)) != 0)
		fail("pipe reported again without new bytes: not edge-triggered (%d, data %llu)", n, (unsigned long long)ev.data.u64);
	v = 1;
	if (write(later, &v, sizeof v) != sizeof v)
		fail("write to the one-shot eventfd failed");
	if ((n = wait_one(ep, &ev)) != 1 || ev.data.u64 != 9)
		fail("one-shot: %d events (data %llu), expected 9", n, (unsigned long long)ev.data.u64);
	if (write(later, &v, sizeof v) != sizeof v || (n = wait_one(ep, &ev)) != 0)
		fail("one-shot target reported twice (%d)", n);
	if (!(fcntl(ep, F_GETFD) & FD_CLOEXEC))
		fail("the epoll lost EPOLL_CLOEXEC");
	victim_finish();
}
