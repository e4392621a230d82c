/*
 * toucher: 16 MiB of private anonymous memory (a VMA of its own between guard pages) that it reads only
 * when asked, page by page, so a test can tell what it touched (the lazy restore's tests).
 *
 *   page i of the buffer holds pattern_fill(seed 0x100 + i): any page can be checked on its own
 *   <workdir>/layout          "buf <start hex> <length hex>", written before ready
 *   <workdir>/progress        a counter, rewritten every ~5 ms while it runs
 *   <workdir>/touch           written by the test: "<page index>"; the victim removes it, reads that page
 *                             and writes <workdir>/touched-<index>: "ok" or "BAD <offset> <byte>"
 *   <workdir>/fork            written by the test: "<page index>"; the victim removes it and forks; the
 *                             child writes <workdir>/child-pid, reads that page, writes
 *                             <workdir>/child-touched-<index> ("ok" or "BAD ...") and exits; the parent
 *                             waits for it and writes <workdir>/forked
 *   <workdir>/check           every page is checked; then PASS or FAIL in <workdir>/result, and exit
 */
#include "victim.h"
#include <sys/mman.h>
#include <sys/wait.h>

#define BUF_SIZE (16u << 20)

static long page;

static long check_page(const unsigned char *buf, size_t i)
{
	return pattern_verify(buf + i * page, page, 0x100 + i);
}

/* Reads page i and reports it in <workdir>/<prefix><i>. */
static void report_page(const unsigned char *buf, size_t i, const char *prefix)
{
	char name[64], text[64];
	long bad = check_page(buf, i);
	snprintf(name, sizeof(name), "%s%zu", prefix, i);
	if (bad < 0)
		snprintf(text, sizeof(text), "ok\n");
	else
		snprintf(text, sizeof(text), "BAD %ld %u\n", bad, buf[i * page + bad]);
	victim_write_file(name, text);
}

/* The index in <workdir>/<name>, which is removed; -1 when there is none. */
static long take_request(const char *name, size_t pages)
{
	char file[PATH_MAX];
	snprintf(file, sizeof(file), "%s/%s", victim_dir, name);
	FILE *f = fopen(file, "r");
	if (!f)
		return -1;
	unsigned long i = 0;
	int got = fscanf(f, "%lu", &i);
	fclose(f);
	unlink(file);
	return got == 1 && i < pages ? (long)i : -1;
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	unsigned char *base = mmap(NULL, BUF_SIZE + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || mprotect(base + page, BUF_SIZE, PROT_READ | PROT_WRITE) != 0)
		exit(4);
	unsigned char *buf = base + page;
	size_t pages = BUF_SIZE / page;
	for (size_t i = 0; i < pages; i++)
		pattern_fill(buf + i * page, page, 0x100 + i);
	char text[128];
	snprintf(text, sizeof(text), "buf %lx %x\n", (unsigned long)buf, BUF_SIZE);
	victim_write_file("layout", text);
	victim_ready();

	for (unsigned long long n = 1;; n++) {
		victim_progress(n);
		long i = take_request("touch", pages);
		if (i >= 0)
			report_page(buf, (size_t)i, "touched-");
		if ((i = take_request("fork", pages)) >= 0) {
			pid_t child = fork();
			if (child == 0) {
				snprintf(text, sizeof(text), "%d\n", (int)getpid());
				victim_write_file("child-pid", text);
				report_page(buf, (size_t)i, "child-touched-");
				_exit(0);
			}
			if (child > 0)
				waitpid(child, NULL, 0);
			victim_write_file("forked", "done\n");
		}
		if (victim_check_requested()) {
			for (size_t i = 0; i < pages; i++)
				if (check_page(buf, i) >= 0) {
					fail("page %zu differs from its pattern", i);
					break;
				}
			victim_finish();
		}
		victim_sleep_ms(5);
	}
}
