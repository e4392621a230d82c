/*
 * memfd-holder: two memfds held as fds (not mapped).
 *
 *   sealed: "cryopod-sealed", 10000 pattern bytes, offset 1234, sealed against shrink, grow and write
 *   open:   "cryopod-open", 3 bytes "abc", no seals (created without MFD_ALLOW_SEALING: F_SEAL_SEAL)
 *
 * After restore: same names, sizes, offsets, seals and contents; writes to `sealed` fail with EPERM,
 * writes to `open` work.
 */
#include "victim.h"
#include <sys/mman.h>

#define SIZE 10000

static int check_one(int fd, const char *name, off_t size, off_t pos, int seals)
{
	char path[64], link[256], want[256];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n > 0 ? n : 0] = '\0';
	snprintf(want, sizeof want, "/memfd:%s (deleted)", name);
	if (strcmp(link, want) != 0)
		fail("fd %d is %s, expected %s", fd, link, want);
	struct stat st;
	if (fstat(fd, &st) != 0 || st.st_size != size)
		fail("%s: size %lld, expected %lld", name, (long long)st.st_size, (long long)size);
	if (lseek(fd, 0, SEEK_CUR) != pos)
		fail("%s: offset %lld, expected %lld", name, (long long)lseek(fd, 0, SEEK_CUR), (long long)pos);
	if (fcntl(fd, F_GET_SEALS) != seals)
		fail("%s: seals %#x, expected %#x", name, fcntl(fd, F_GET_SEALS), seals);
	return 0;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	static char data[SIZE + 8], back[SIZE + 8];
	pattern_fill(data, SIZE, 99);
	int sealed = memfd_create("cryopod-sealed", MFD_ALLOW_SEALING);
	int open_fd = memfd_create("cryopod-open", MFD_CLOEXEC);
	int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
	if (sealed < 0 || open_fd < 0 || write(sealed, data, SIZE) != SIZE || write(open_fd, "abc", 3) != 3 ||
	    fcntl(sealed, F_ADD_SEALS, seals) != 0 || lseek(sealed, 1234, SEEK_SET) != 1234)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	check_one(sealed, "cryopod-sealed", SIZE, 1234, seals);
	check_one(open_fd, "cryopod-open", 3, 3, F_SEAL_SEAL);
	if (pread(sealed, back, SIZE, 0) != SIZE || pattern_verify(back, SIZE, 99) != -1)
		fail("cryopod-sealed: contents differ at byte %ld", pattern_verify(back, SIZE, 99));
	if (write(sealed, "x", 1) != -1 || errno != EPERM)
		fail("cryopod-sealed: a write did not fail with EPERM (seal lost)");
	if (write(open_fd, "d", 1) != 1 || pread(open_fd, back, 4, 0) != 4 || memcmp(back, "abcd", 4) != 0)
		fail("cryopod-open: write and read back failed");
	if (!(fcntl(open_fd, F_GETFD) & FD_CLOEXEC))
		fail("cryopod-open lost MFD_CLOEXEC");
	victim_finish();
}
