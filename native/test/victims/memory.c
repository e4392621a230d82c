/*
 * memory: private memory of every kind holds a known pattern across dump and restore.
 *
 *   heap      malloc(8 MiB)                       pattern, checksum
 *   stack     64 KiB array in main()'s frame      pattern, checksum
 *   anon      mmap 32 MiB private anonymous       pattern, checksum
 *   sparse    mmap 4 MiB, only every 8th page touched: untouched pages must still read as zero
 *   ro        one page filled, then mprotect(PROT_READ): still read-only after restore
 *   cow       MAP_PRIVATE of a 4-page file in <workdir>: page 1 written (COW-ed), pages 0, 2, 3 clean
 *   brk       sbrk(64 KiB) grown and filled: keeps its pattern; the kernel's break is where it was and
 *             can still grow
 *
 * anon, sparse and ro sit between PROT_NONE guard pages, so each is a VMA of its own (the tests compare the
 * pages the dump counted for them: 8192, 128 and 1). Before ready the victim writes <workdir>/layout:
 * one line "<region> <start hex> <length hex>" for anon, sparse, ro and cow.
 *
 * On check every region is compared with its pattern and its checksum, and /proc/self/maps must still show
 * each one at the same address with the same permissions.
 */
#include "victim.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define HEAP_SIZE (8u << 20)
#define STACK_SIZE (64u << 10)
#define ANON_SIZE (32u << 20)
#define SPARSE_SIZE (4u << 20)
#define BRK_SIZE (64u << 10)
#define COW_PAGES 4

struct region {
	const char *what;
	void *addr;
	size_t len;
	uint64_t seed;
	uint64_t sum;
	const char *perms;
};

static long page;
static sigjmp_buf segv_jmp;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(segv_jmp, 1);
}

/* Returns 1 if writing one byte at p faults. */
static int write_faults(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = on_segv }, old;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	int faulted = 1;
	if (sigsetjmp(segv_jmp, 1) == 0) {
		p[0] = p[0];
		faulted = 0;
	}
	sigaction(SIGSEGV, &old, NULL);
	return faulted;
}

static void check_region(const struct region *r)
{
	long bad = pattern_verify(r->addr, r->len, r->seed);
	if (bad >= 0)
		fail("%s: pattern differs at offset %ld (address %p)", r->what, bad, (char *)r->addr + bad);
	if (checksum(r->addr, r->len) != r->sum)
		fail("%s: checksum differs", r->what);
	char perms[5];
	if (maps_find((uintptr_t)r->addr, r->len, perms, NULL, 0, NULL, NULL) != 0)
		fail("%s: no mapping covers %p-%p any more", r->what, r->addr, (char *)r->addr + r->len);
	else if (strncmp(perms, r->perms, strlen(r->perms)) != 0)
		fail("%s: perms are %s, expected %s", r->what, perms, r->perms);
}

/* len bytes of private anonymous memory between two PROT_NONE guard pages. */
static void *guarded_mmap(size_t len)
{
	char *base = mmap(NULL, len + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED || mprotect(base + page, len, PROT_READ | PROT_WRITE) != 0)
		exit(4);
	return base + page;
}

__attribute__((noinline)) static void run(unsigned char *stack_buf)
{
	page = sysconf(_SC_PAGESIZE);
	struct region regions[5];
	int n = 0;

	unsigned char *heap = malloc(HEAP_SIZE);
	if (!heap)
		exit(4);
	regions[n++] = (struct region){ "heap (malloc 8 MiB)", heap, HEAP_SIZE, 0x1111, 0, "rw" };

	regions[n++] = (struct region){ "stack array", stack_buf, STACK_SIZE, 0x2222, 0, "rw" };

	void *anon = guarded_mmap(ANON_SIZE);
	regions[n++] = (struct region){ "anon mmap 32 MiB", anon, ANON_SIZE, 0x3333, 0, "rw" };

	void *brk_area = sbrk(BRK_SIZE);
	if (brk_area == (void *)-1)
		exit(4);
	regions[n++] = (struct region){ "brk area (sbrk 64 KiB)", brk_area, BRK_SIZE, 0x5555, 0, "rw" };

	void *ro = guarded_mmap(page);
	regions[n++] = (struct region){ "read-only page", ro, page, 0x4444, 0, "r--p" };

	for (int i = 0; i < n; i++) {
		pattern_fill(regions[i].addr, regions[i].len, regions[i].seed);
		regions[i].sum = checksum(regions[i].addr, regions[i].len);
	}
	if (mprotect(ro, page, PROT_READ) != 0)
		exit(4);

	unsigned char *sparse = guarded_mmap(SPARSE_SIZE);
	for (size_t off = 0; off < SPARSE_SIZE; off += 8 * page)
		memset(sparse + off, 0xA5, page);

	/* A private file mapping with one COW-ed page. */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/cow.bin", victim_dir);
	unsigned char *file_data = malloc(COW_PAGES * page);
	pattern_fill(file_data, COW_PAGES * page, 0x6666);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, file_data, COW_PAGES * page) != COW_PAGES * page)
		exit(4);
	unsigned char *cow = mmap(NULL, COW_PAGES * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (cow == MAP_FAILED)
		exit(4);
	close(fd);
	uint64_t cow_sum0 = checksum(cow, page); /* reads page 0 in (clean, file-backed) */
	pattern_fill(cow + page, page, 0x7777);  /* page 1: COW-ed, must come from the image */
	uint64_t cow_sum1 = checksum(cow + page, page);

	char layout[512];
	snprintf(layout, sizeof(layout), "anon %lx %x\nsparse %lx %x\nro %lx %lx\ncow %lx %lx\n", (unsigned long)anon,
		 ANON_SIZE, (unsigned long)sparse, SPARSE_SIZE, (unsigned long)ro, page, (unsigned long)cow,
		 COW_PAGES * page);
	victim_write_file("layout", layout);

	void *brk_end = (void *)syscall(SYS_brk, 0);
	victim_ready();
	while (!victim_check_requested())
		victim_sleep_ms(20);

	/* Before anything here mallocs: the kernel's break is still where it was, and it can grow. */
	void *brk_now = (void *)syscall(SYS_brk, 0);
	if (brk_now != brk_end)
		fail("program break is %p, was %p", brk_now, brk_end);
	unsigned char *grown = sbrk(4 * page);
	if (grown == (void *)-1)
		fail("sbrk cannot grow the heap any more: %s", strerror(errno));
	else
		memset(grown, 0x5A, 4 * page);

	for (int i = 0; i < n; i++)
		check_region(&regions[i]);

	for (size_t off = 0; off < SPARSE_SIZE; off += page) {
		unsigned char want = (off / page) % 8 == 0 ? 0xA5 : 0;
		size_t i;
		for (i = 0; i < (size_t)page && sparse[off + i] == want; i++)
			;
		if (i != (size_t)page) {
			fail("sparse mmap: byte at offset %zu is %#x, expected %#x", off + i, sparse[off + i], want);
			break;
		}
	}

	if (checksum(cow, page) != cow_sum0 || memcmp(cow, file_data, page) != 0)
		fail("private file mapping: clean page 0 differs from the file");
	if (checksum(cow + page, page) != cow_sum1 || pattern_verify(cow + page, page, 0x7777) >= 0)
		fail("private file mapping: COW-ed page 1 lost its private content");
	if (memcmp(cow + 2 * page, file_data + 2 * page, 2 * page) != 0)
		fail("private file mapping: untouched pages 2-3 differ from the file");
	char perms[5], name[PATH_MAX];
	if (maps_find((uintptr_t)cow, COW_PAGES * page, perms, name, sizeof(name), NULL, NULL) != 0)
		fail("private file mapping: no longer one mapping at %p", cow);
	else if (strcmp(perms, "rw-p") != 0 || strcmp(name, path) != 0)
		fail("private file mapping: now %s %s, expected rw-p %s", perms, name, path);

	if (!write_faults(ro))
		fail("read-only page: a write did not fault");

	victim_finish();
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	unsigned char stack_buf[STACK_SIZE] __attribute__((aligned(16)));
	pattern_fill(stack_buf, STACK_SIZE, 0x2222);
	__asm__ volatile("" : : "r"(stack_buf) : "memory");
	run(stack_buf);
}
