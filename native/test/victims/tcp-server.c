/*
 * tcp-server: a line server on 127.0.0.1 (port in <workdir>/port): each line gets "<n> <resets>\n",
 * n counting every line served since start (state in memory), resets the connections that ended with
 * ECONNRESET. A client connected during the checkpoint is a connection whose peer is gone after the
 * restore: its next read here sees ECONNRESET; the client reconnects and is served with n going on.
 * On check: PASS when at least one reset was seen and lines were served after it.
 */
#include "victim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#define MAX_CLIENTS 16

static unsigned long served, resets, served_after_reset;

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sa;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 16) || getsockname(l, (struct sockaddr *)&sa, &len))
		fail("listen: %s", strerror(errno));
	char port[16];
	snprintf(port, sizeof port, "%d\n", ntohs(sa.sin_port));
	victim_write_file("port", port);
	struct pollfd fds[1 + MAX_CLIENTS];
	int n = 1;
	fds[0] = (struct pollfd){ l, POLLIN, 0 };
	victim_ready();
	while (!victim_check_requested()) {
		if (poll(fds, (nfds_t)n, 20) <= 0)
			continue;
		if ((fds[0].revents & POLLIN) && n < 1 + MAX_CLIENTS) {
			int c = accept(l, NULL, NULL);
			if (c >= 0)
				fds[n++] = (struct pollfd){ c, POLLIN, 0 };
		}
		for (int i = 1; i < n; i++) {
			if (!fds[i].revents)
				continue;
			char buf[256];
			ssize_t r = read(fds[i].fd, buf, sizeof buf);
			if (r > 0) {
				char reply[64];
				for (ssize_t k = 0; k < r; k++)
					if (buf[k] == '\n') {
						served++;
						if (resets)
							served_after_reset++;
						int m = snprintf(reply, sizeof reply, "%lu %lu\n", served, resets);
						if (write(fds[i].fd, reply, (size_t)m) != m)
							break;
					}
				continue;
			}
			if (r < 0 && errno == ECONNRESET)
				resets++;
			close(fds[i].fd);
			fds[i--] = fds[--n];
		}
	}
	if (resets == 0)
		fail("no connection ended with ECONNRESET");
	if (served_after_reset == 0)
		fail("nothing was served after the reset");
	victim_finish();
}
