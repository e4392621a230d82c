/*
 * fifo-holder: both ends of a named pipe (<workdir>/fifo) with 10 bytes in it that nobody read. After
 * restore both fds are that FIFO again (by path), the 10 bytes are there once (not twice: two fds hold
 * it), and bytes written after restore come out behind them; the read end is still non-blocking.
 */
#include "victim.h"
#include <sys/ioctl.h>

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/fifo", victim_dir);
	if (mkfifo(path, 0600) != 0)
		exit(4);
	int rd = open(path, O_RDONLY | O_NONBLOCK);
	int wr = open(path, O_WRONLY);
	if (rd < 0 || wr < 0 || write(wr, "hello fifo", 10) != 10)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	struct stat st;
	if (fstat(rd, &st) != 0 || !S_ISFIFO(st.st_mode) || fstat(wr, &st) != 0 || !S_ISFIFO(st.st_mode))
		fail("the fds are not FIFOs after restore");
	int queued = -1;
	if (ioctl(rd, FIONREAD, &queued) != 0 || queued != 10)
		fail("%d bytes in the FIFO, expected 10", queued);
	if (write(wr, "!", 1) != 1)
		fail("write to the FIFO failed: %s", strerror(errno));
	char buf[32] = { 0 };
	ssize_t n = read(rd, buf, sizeof buf);
	if (n != 11 || memcmp(buf, "hello fifo!", 11) != 0)
		fail("read %zd bytes \"%.*s\", expected \"hello fifo!\"", n, (int)(n > 0 ? n : 0), buf);
	if (read(rd, buf, 1) != -1 || errno != EAGAIN)
		fail("the read end is not non-blocking any more");
	victim_finish();
}
