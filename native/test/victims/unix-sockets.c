/*
 * unix-sockets: connections inside one process with bytes queued in both directions, and listeners.
 *   a stream socketpair: "ping from a" waits at b, "pong from b" waits at a;
 *   a seqpacket socketpair: two messages "one" and "two" wait at b (their boundaries must survive);
 *   a datagram socketpair: "dgram" waits at a;
 *   a stream listener on <workdir>/srv.sock and one on the abstract @cryopod-unix-<pid>.
 * On check: every queued message arrives as it was sent, the pairs still carry new bytes both ways,
 * and both listeners accept a connection (made by the process itself) and carry a message over it.
 */
#include "victim.h"

#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

static int stream_pair[2], seq_pair[2], dgram_pair[2], path_listener, abstract_listener;
static struct sockaddr_un path_addr, abstract_addr;
static socklen_t path_len, abstract_len;

static void expect_message(int fd, const char *want, const char *what)
{
	char buf[64] = "";
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 2000) != 1) {
		fail("%s: nothing to read", what);
		return;
	}
	ssize_t n = recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		fail("%s: read \"%.*s\" (%zd bytes), not \"%s\"", what, n > 0 ? (int)n : 0, buf, n, want);
}

static void send_message(int fd, const char *msg, const char *what)
{
	if (send(fd, msg, strlen(msg), MSG_DONTWAIT) != (ssize_t)strlen(msg))
		fail("%s: send: %s", what, strerror(errno));
}

static int listen_on(struct sockaddr_un *sa, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, len) != 0 || listen(fd, 8) != 0)
		fail("listener: %s", strerror(errno));
	return fd;
}

static void check_listener(int listener, struct sockaddr_un *sa, socklen_t len, const char *what)
{
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)sa, len) != 0) {
		fail("%s: connect: %s", what, strerror(errno));
		return;
	}
	struct pollfd p = { listener, POLLIN, 0 };
	int s = poll(&p, 1, 2000) == 1 ? accept(listener, NULL, NULL) : -1;
	if (s < 0) {
		fail("%s: accept: %s", what, strerror(errno));
		close(c);
		return;
	}
	send_message(c, "hello listener", what);
	expect_message(s, "hello listener", what);
	close(s);
	close(c);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, stream_pair) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, seq_pair) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram_pair))
		fail("socketpair: %s", strerror(errno));
	send_message(stream_pair[0], "ping from a", "stream a");
	send_message(stream_pair[1], "pong from b", "stream b");
	send_message(seq_pair[0], "one", "seqpacket");
	send_message(seq_pair[0], "two", "seqpacket");
	send_message(dgram_pair[1], "dgram", "dgram");

	path_addr.sun_family = AF_UNIX;
	snprintf(path_addr.sun_path, sizeof path_addr.sun_path, "%s/srv.sock", victim_dir);
	path_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path_addr.sun_path) + 1);
	path_listener = listen_on(&path_addr, path_len);
	abstract_addr.sun_family = AF_UNIX;
	int n = snprintf(abstract_addr.sun_path + 1, sizeof abstract_addr.sun_path - 1, "cryopod-unix-%d", (int)getpid());
	abstract_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	abstract_listener = listen_on(&abstract_addr, abstract_len);

	victim_ready();
	unsigned long ticks = 0;
	while (!victim_check_requested()) {
		victim_progress(++ticks);
		victim_sleep_ms(20);
	}
	expect_message(stream_pair[1], "ping from a", "queued at stream b");
	expect_message(stream_pair[0], "pong from b", "queued at stream a");
	expect_message(seq_pair[1], "one", "first seqpacket message");
	expect_message(seq_pair[1], "two", "second seqpacket message");
	expect_message(dgram_pair[0], "dgram", "queued datagram");
	send_message(stream_pair[0], "again a", "stream a after restore");
	expect_message(stream_pair[1], "again a", "stream b after restore");
	send_message(seq_pair[1], "back", "seqpacket b after restore");
	expect_message(seq_pair[0], "back", "seqpacket a after restore");
	check_listener(path_listener, &path_addr, path_len, "path listener");
	check_listener(abstract_listener, &abstract_addr, abstract_len, "abstract listener");
	victim_finish();
}
