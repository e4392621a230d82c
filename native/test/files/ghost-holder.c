/*
 * ghost-holder: two files in <workdir> opened and then deleted (unlinked), still held open.
 *
 *   data: 50000 pattern bytes, O_RDWR, offset 777
 *   log:  "line 1\n", O_WRONLY | O_APPEND
 *
 * After restore each fd is again "<workdir>/<name> (deleted)" with no link left, the same size, offset,
 * access mode and contents; writes go on (the log appends), and nothing is left at the old paths.
 */
#include "victim.h"

#define SIZE 50000

static void check_link(int fd, const char *name)
{
	char proc[64], link[PATH_MAX], want[PATH_MAX + 16];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(proc, link, sizeof link - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof want, "%s/%s (deleted)", victim_dir, name);
	if (strcmp(link, want) != 0)
		fail("fd %d is \"%s\", expected \"%s\"", fd, link, want);
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_nlink != 0)
		fail("%s: %lu links, expected 0 (still deleted)", name, (unsigned long)st.st_nlink);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	static char data[SIZE + 8], back[SIZE + 8];
	pattern_fill(data, SIZE, 7);
	char path[PATH_MAX], logpath[PATH_MAX];
	snprintf(path, sizeof path, "%s/data", victim_dir);
	snprintf(logpath, sizeof logpath, "%s/log", victim_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	int log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0600);
	if (fd < 0 || log < 0 || write(fd, data, SIZE) != SIZE || lseek(fd, 777, SEEK_SET) != 777 || write(log, "line 1\n", 7) != 7 ||
	    unlink(path) != 0 || unlink(logpath) != 0)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	check_link(fd, "data");
	check_link(log, "log");
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size != SIZE || (st.st_mode & 07777) != 0640)
		fail("data: size %lld mode %o, expected %d and 640", (long long)st.st_size, st.st_mode & 07777, SIZE);
	if (lseek(fd, 0, SEEK_CUR) != 777)
		fail("data: offset %lld, expected 777", (long long)lseek(fd, 0, SEEK_CUR));
	if (pread(fd, back, SIZE, 0) != SIZE || pattern_verify(back, SIZE, 7) != -1)
		fail("data: contents differ");
	if (write(log, "line 2\n", 7) != 7)
		fail("log: append failed: %s", strerror(errno));
	if (read(log, back, 1) != -1 || errno != EBADF)
		fail("log: readable, but it was opened write-only");
	if (access(path, F_OK) == 0 || access(logpath, F_OK) == 0)
		fail("a ghost was left at the old path");
	victim_finish();
}
