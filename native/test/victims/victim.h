/*
 * The protocol every victim follows (the jest harness, native/test/harness.ts, drives the other side):
 *
 *   victim <workdir> [args...]        stdin/stdout/stderr are /dev/null
 *     0. closes every fd above 2 it inherited (node's spawn passes on whatever non-CLOEXEC fds the test
 *        runner has, e.g. a pipe, which would make the dump refuse the victim)
 *     1. builds its state
 *     2. writes its pid to <workdir>/ready        (atomically: <workdir>/.ready.tmp + rename)
 *     3. loops; every iteration (or every ~1M iterations for the busy loop) it stat()s <workdir>/check
 *     4. when <workdir>/check exists it verifies its own state and writes
 *        "PASS\n" or "FAIL: <reason>; <reason>...\n" to <workdir>/result (atomically) and exits 0 / 1
 *
 *   Some victims also write <workdir>/progress (a counter, atomically) so the tests can see them run on.
 *
 * Between 2 and 3 the tests dump the victim (which kills it), restore it as a new process, and create the
 * check file: the victim's verification then runs in the restored process. A victim keeps everything it
 * needs for verification in its own memory; it never trusts anything the test could fake.
 *
 * Failures are collected with fail() and reported together, so one run tells the whole story.
 */
#ifndef CRYOPOD_VICTIM_H
#define CRYOPOD_VICTIM_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static char victim_dir[PATH_MAX];
static char victim_check_path[PATH_MAX];
static char victim_failures[4096];

/* Writes `data` to <workdir>/<name> atomically (tmp file + rename). Returns 0 or -1. */
static inline int victim_write_file(const char *name, const char *data)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", victim_dir, name);
	snprintf(dst, sizeof(dst), "%s/%s", victim_dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t len = strlen(data);
	ssize_t n = write(fd, data, len);
	if (close(fd) != 0 || n != (ssize_t)len)
		return -1;
	return rename(tmp, dst);
}

/* Records one failure reason (printf-style); victim_finish() reports all of them. */
__attribute__((format(printf, 1, 2))) static inline void fail(const char *fmt, ...)
{
	size_t used = strlen(victim_failures);
	if (used + 3 >= sizeof(victim_failures))
		return;
	if (used) {
		strcpy(victim_failures + used, "; ");
		used += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(victim_failures + used, sizeof(victim_failures) - used, fmt, ap);
	va_end(ap);
}

/* Call first: takes <workdir> from argv[1] (made absolute). Exits 2 on a usage error. */
static inline void victim_init(int argc, char **argv)
{
	if (argc < 2 || !realpath(argv[1], victim_dir)) {
		fprintf(stderr, "usage: %s <workdir>\n", argv[0]);
		exit(2);
	}
	snprintf(victim_check_path, sizeof(victim_check_path), "%s/check", victim_dir);
	syscall(SYS_close_range, 3U, ~0U, 0U);
}

/* Step 2: the state is built; tell the test our pid. */
static inline void victim_ready(void)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (victim_write_file("ready", buf) != 0)
		exit(3);
}

/* Step 3: one stat() syscall. */
static inline int victim_check_requested(void)
{
	struct stat st;
	return stat(victim_check_path, &st) == 0;
}

static inline void victim_progress(unsigned long long n)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu\n", n);
	victim_write_file("progress", buf);
}

/* Step 4: report what fail() collected, and exit. */
__attribute__((noreturn)) static inline void victim_finish(void)
{
	char buf[sizeof(victim_failures) + 16];
	int ok = victim_failures[0] == '\0';
	if (ok)
		snprintf(buf, sizeof(buf), "PASS\n");
	else
		snprintf(buf, sizeof(buf), "FAIL: %s\n", victim_failures);
	victim_write_file("result", buf);
	exit(ok ? 0 : 1);
}

static inline double victim_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps `ms` milliseconds, resuming after EINTR. */
static inline void victim_sleep_ms(long ms)
{
	struct timespec req = { ms / 1000, (ms % 1000) * 1000000L }, rem;
	while (nanosleep(&req, &rem) != 0 && errno == EINTR)
		req = rem;
}

/* Deterministic pseudo-random pattern (xorshift64*), the same in every victim. */
static inline uint64_t pattern_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static inline void pattern_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1, *p = buf;
	for (size_t i = 0; i < len / 8; i++)
		p[i] = pattern_next(&s);
}

/* Returns the byte offset of the first mismatch against the pattern, or -1 when it matches. */
static inline long pattern_verify(const void *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed | 1;
	const uint64_t *p = buf;
	for (size_t i = 0; i < len / 8; i++)
		if (p[i] != pattern_next(&s))
			return (long)(i * 8);
	return -1;
}

/* FNV-1a over 64-bit words. */
static inline uint64_t checksum(const void *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	const uint64_t *p = buf;
	for (size_t i = 0; i < len / 8; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

/*
 * Finds the /proc/self/maps line whose range covers [addr, addr+len). Fills perms (5 chars + NUL) and the
 * mapping's name (may be empty), start and end. Returns 0, or -1 if no single mapping covers the range.
 */
static inline int maps_find(uintptr_t addr, size_t len, char perms[5], char *name, size_t name_len,
		     uintptr_t *start_out, uintptr_t *end_out)
{
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	char line[PATH_MAX + 128];
	int found = -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;
		char p[5];
		int name_at = 0;
		if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &start, &end, p, &name_at) < 3)
			continue;
		if (addr >= start && addr + len <= end) {
			memcpy(perms, p, 5);
			if (name) {
				snprintf(name, name_len, "%s", name_at ? line + name_at : "");
				name[strcspn(name, "\n")] = '\0';
			}
			if (start_out)
				*start_out = start;
			if (end_out)
				*end_out = end;
			found = 0;
			break;
		}
	}
	fclose(f);
	return found;
}

#endif
