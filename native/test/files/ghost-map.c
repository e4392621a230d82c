/*
 * ghost-map: a file of 4 pages (a pattern) in <workdir>, mapped twice and then deleted (unlinked) with
 * no fd left open, as a program whose library or data file was replaced under it:
 *
 *   priv:   MAP_PRIVATE, the whole file; page 1 written (copy-on-write), page 3 made read-only (so the
 *           mapping is two VMAs of one file)
 *   shared: MAP_SHARED read-write, the whole file; page 2 written (into the file itself)
 *
 * After restore both are again "<workdir>/mapped (deleted)" and map one file: the private mapping sees
 * its own page 1, the shared write of page 2 (never copied on write) and the pattern elsewhere; a
 * write through the shared mapping after restore shows in the private one; nothing is at the old path.
 */
#include "victim.h"
#include <sys/mman.h>

#define PAGE 4096
#define SIZE (4 * PAGE)

static int maps_deleted(const char *path)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 128], want[PATH_MAX + 16];
	snprintf(want, sizeof want, "%s (deleted)", path);
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		if (strstr(line, want))
			n++;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	static char data[SIZE];
	pattern_fill(data, SIZE, 11);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/mapped", victim_dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, SIZE) != SIZE)
		exit(4);
	char *priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	char *shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		exit(4);
	memset(priv + PAGE, 'p', PAGE);
	memset(shared + 2 * PAGE, 's', PAGE);
	if (mprotect(priv + 3 * PAGE, PAGE, PROT_READ) != 0 || close(fd) != 0 || unlink(path) != 0)
		exit(4);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);
	if (maps_deleted(path) != 3)
		fail("%d mappings of \"%s (deleted)\" in /proc/self/maps, expected 3", maps_deleted(path), path);
	for (int i = 0; i < PAGE; i++) {
		if (priv[PAGE + i] != 'p' || priv[2 * PAGE + i] != 's' || shared[2 * PAGE + i] != 's' || shared[PAGE + i] != data[PAGE + i]) {
			fail("byte %d of the pages differs after restore", i);
			break;
		}
	}
	if (memcmp(priv, data, PAGE) != 0 || memcmp(priv + 3 * PAGE, data + 3 * PAGE, PAGE) != 0 || memcmp(shared, data, PAGE) != 0)
		fail("the untouched pages differ from the file's pattern");
	shared[0] = 'S';
	if (priv[0] != 'S')
		fail("a write through the shared mapping does not show in the private one: they map two files");
	if (access(path, F_OK) == 0)
		fail("a ghost was left at the old path");
	victim_finish();
}
