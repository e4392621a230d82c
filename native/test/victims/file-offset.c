/*
 * file-offset: open files keep their offsets, flags and cwd across dump and restore.
 *
 *   <workdir>/data.bin  1 MiB of pattern, opened O_RDONLY|O_CLOEXEC and read up to offset 4219 (4096 + 123)
 *   <workdir>/log       opened O_WRONLY|O_APPEND (no CLOEXEC); "tick <n>\n" appended every 50 ms, before
 *                       and after the restore (the test reads the counter on both sides)
 *   cwd                 chdir(<workdir>)
 *
 * On check: lseek(data, 0, SEEK_CUR) is still 4219, the next 8 KiB read equal the file's bytes there, both
 * fds have their flags (F_GETFL) and FD_CLOEXEC, a write to the log appends at its end, getcwd() is the
 * workdir.
 */
#include "victim.h"

#define DATA_SIZE (1u << 20)
#define DATA_OFF (4096 + 123)
#define DATA_SEED 0x9999

static unsigned char expected[DATA_SIZE];

static int read_full(int fd, unsigned char *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	if (chdir(victim_dir) != 0)
		exit(4);

	pattern_fill(expected, DATA_SIZE, DATA_SEED);
	int wfd = open("data.bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (wfd < 0 || write(wfd, expected, DATA_SIZE) != DATA_SIZE || close(wfd) != 0)
		exit(4);

	int data = open("data.bin", O_RDONLY | O_CLOEXEC);
	int log = open("log", O_WRONLY | O_APPEND | O_CREAT, 0644);
	if (data < 0 || log < 0)
		exit(4);
	unsigned char buf[8192];
	if (read_full(data, buf, 4096) != 0 || read_full(data, buf + 4096, 123) != 0)
		exit(4);
	if (memcmp(buf, expected, DATA_OFF) != 0)
		exit(5);

	victim_ready();
	unsigned long tick = 0;
	char line[64];
	while (!victim_check_requested()) {
		int len = snprintf(line, sizeof(line), "tick %lu\n", ++tick);
		if (write(log, line, (size_t)len) != len) {
			fail("write to the log fd failed after %lu ticks: %s", tick, strerror(errno));
			victim_finish();
		}
		victim_sleep_ms(50);
	}

	off_t pos = lseek(data, 0, SEEK_CUR);
	if (pos != DATA_OFF)
		fail("data fd offset is %lld, expected %d", (long long)pos, DATA_OFF);
	if (read_full(data, buf, sizeof(buf)) != 0)
		fail("reading on from the data fd failed: %s", strerror(errno));
	else if (memcmp(buf, expected + (pos >= 0 ? pos : 0), sizeof(buf)) != 0)
		fail("bytes read on from the data fd differ from the file at offset %lld", (long long)pos);

	int fl = fcntl(data, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_RDONLY || (fl & O_APPEND))
		fail("data fd flags are %#o", fl);
	int fdfl = fcntl(data, F_GETFD);
	if (fdfl < 0 || !(fdfl & FD_CLOEXEC))
		fail("data fd lost FD_CLOEXEC (F_GETFD %d)", fdfl);
	fl = fcntl(log, F_GETFL);
	if (fl < 0 || (fl & O_ACCMODE) != O_WRONLY || !(fl & O_APPEND))
		fail("log fd flags are %#o, expected O_WRONLY|O_APPEND", fl);
	fdfl = fcntl(log, F_GETFD);
	if (fdfl < 0 || (fdfl & FD_CLOEXEC))
		fail("log fd gained FD_CLOEXEC (F_GETFD %d)", fdfl);

	/* O_APPEND: even with the offset moved to 0, a write lands at the end. */
	struct stat before, after;
	const char *end_line = "check\n";
	lseek(log, 0, SEEK_SET);
	if (fstat(log, &before) != 0 || write(log, end_line, strlen(end_line)) != (ssize_t)strlen(end_line) ||
	    fstat(log, &after) != 0)
		fail("final write to the log failed: %s", strerror(errno));
	else if (after.st_size != before.st_size + (off_t)strlen(end_line))
		fail("log did not grow by one line (%lld -> %lld)", (long long)before.st_size,
		     (long long)after.st_size);
	else {
		char tail[16] = { 0 };
		size_t len = strlen(end_line);
		int rfd = open("log", O_RDONLY | O_CLOEXEC);
		if (rfd < 0 || pread(rfd, tail, len, after.st_size - (off_t)len) != (ssize_t)len ||
		    strcmp(tail, end_line) != 0)
			fail("the last write did not land at the end of the log");
		if (rfd >= 0)
			close(rfd);
	}

	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		fail("getcwd failed: %s", strerror(errno));
	else if (strcmp(cwd, victim_dir) != 0)
		fail("cwd is %s, expected %s", cwd, victim_dir);

	victim_finish();
}
