/*
 * vdso-clock: a glibc program reading the clock through the vDSO, before and after restore.
 *
 * The loop calls clock_gettime(CLOCK_MONOTONIC) (glibc -> vDSO) and fails if time ever goes backwards;
 * the last value read before the dump stays in memory.
 * On check:
 *   - the clock is still monotonic, also against the last value before the check;
 *   - getauxval(AT_SYSINFO_EHDR) (glibc's copy) and AT_SYSINFO_EHDR in /proc/self/auxv (the kernel's) both
 *     point at the start of the [vdso] line of /proc/self/maps, and [vvar] sits right below it as before;
 *   - __vdso_clock_gettime, looked up in the vDSO's own ELF symbol table and called directly, agrees with
 *     the clock_gettime syscall (a vDSO whose data page [vvar] is at the wrong offset reads garbage);
 *   - one call through glibc takes < 1 us on average over 100k calls, and is at least twice as fast as the
 *     syscall (a syscall fallback is not the vDSO path).
 */
#include "victim.h"
#include <elf.h>
#include <sys/auxv.h>
#include <sys/syscall.h>

typedef int (*vdso_gettime_fn)(clockid_t, struct timespec *);

static struct timespec last;
static unsigned long backwards;
static uintptr_t vdso_at_start, vdso_dist_vvar_at_start;

static int ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

static void tick(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (ts_before(now, last))
		backwards++;
	last = now;
}

/* Finds a dynamic symbol in the vDSO image mapped at base, through its section headers. */
static void *vdso_sym(uintptr_t base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return NULL;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
	intptr_t load_offset = 0;
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD) {
			load_offset = (intptr_t)base + (intptr_t)ph[i].p_offset - (intptr_t)ph[i].p_vaddr;
			break;
		}
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		size_t count = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t j = 0; j < count; j++)
			if (sym[j].st_name && strcmp(str + sym[j].st_name, name) == 0 && sym[j].st_shndx != SHN_UNDEF)
				return (void *)(sym[j].st_value + load_offset);
	}
	return NULL;
}

static uintptr_t kernel_auxv(unsigned long type)
{
	unsigned long pair[2];
	uintptr_t val = 0;
	int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	while (read(fd, pair, sizeof(pair)) == sizeof(pair) && pair[0] != AT_NULL)
		if (pair[0] == type)
			val = pair[1];
	close(fd);
	return val;
}

/* Average ns per call of glibc's clock_gettime (mode 0) or the raw syscall (mode 1); best of 5 x 20k. */
static double ns_per_call(int mode)
{
	double best = 1e9;
	struct timespec t;
	for (int round = 0; round < 5; round++) {
		double a = victim_now();
		for (int i = 0; i < 20000; i++) {
			if (mode == 0)
				clock_gettime(CLOCK_MONOTONIC, &t);
			else
				syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
		}
		double ns = (victim_now() - a) * 1e9 / 20000;
		if (ns < best)
			best = ns;
	}
	return best;
}

static void check_layout(const char *when)
{
	uintptr_t glibc_ehdr = getauxval(AT_SYSINFO_EHDR), kernel_ehdr = kernel_auxv(AT_SYSINFO_EHDR);
	uintptr_t vdso_start = 0, vdso_end, vvar_start = 0;
	char perms[5], name[64];
	if (maps_find(glibc_ehdr, 1, perms, name, sizeof(name), &vdso_start, &vdso_end) != 0 ||
	    strcmp(name, "[vdso]") != 0 || vdso_start != glibc_ehdr)
		fail("%s: getauxval(AT_SYSINFO_EHDR) %#lx is not the start of [vdso] (found %s at %#lx)", when,
		     (unsigned long)glibc_ehdr, vdso_start ? name : "nothing", (unsigned long)vdso_start);
	if (kernel_ehdr != glibc_ehdr)
		fail("%s: AT_SYSINFO_EHDR in /proc/self/auxv is %#lx, getauxval says %#lx", when,
		     (unsigned long)kernel_ehdr, (unsigned long)glibc_ehdr);
	/* [vvar] is the lowest of the vDSO's mappings; find its distance below [vdso]. */
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (strstr(line, "[vvar]\n") && sscanf(line, "%lx-%lx", &s, &e) == 2)
			vvar_start = s;
	}
	if (f)
		fclose(f);
	if (!vvar_start)
		fail("%s: no [vvar] mapping", when);
	if (vdso_at_start == 0) {
		vdso_at_start = glibc_ehdr;
		vdso_dist_vvar_at_start = glibc_ehdr - vvar_start;
	} else if (glibc_ehdr - vvar_start != vdso_dist_vvar_at_start) {
		fail("%s: [vvar] is %#lx below [vdso], was %#lx", when, (unsigned long)(glibc_ehdr - vvar_start),
		     (unsigned long)vdso_dist_vvar_at_start);
	}
	if (glibc_ehdr != vdso_at_start)
		fail("%s: [vdso] moved from %#lx to %#lx", when, (unsigned long)vdso_at_start, (unsigned long)glibc_ehdr);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	check_layout("at start");
	vdso_gettime_fn direct = (vdso_gettime_fn)vdso_sym(getauxval(AT_SYSINFO_EHDR), "__vdso_clock_gettime");
	if (!direct)
		exit(4);
	double ns_before = ns_per_call(0);

	tick();
	victim_ready();
	unsigned long iter = 0;
	while (!victim_check_requested()) {
		for (int i = 0; i < 1000; i++)
			tick();
		if (++iter % 16 == 0)
			victim_sleep_ms(1);
	}
	struct timespec last_before_check = last;
	tick();
	if (ts_before(last, last_before_check))
		fail("CLOCK_MONOTONIC went backwards at the check");
	if (backwards)
		fail("CLOCK_MONOTONIC went backwards %lu times in the loop", backwards);

	check_layout("after restore");

	struct timespec v, s1, s2;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &s1);
	int rc = direct(CLOCK_MONOTONIC, &v);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &s2);
	if (rc != 0)
		fail("__vdso_clock_gettime returned %d", rc);
	else if (ts_before(v, s1) || ts_before(s2, v))
		fail("__vdso_clock_gettime says %ld.%09ld, outside the syscall's [%ld.%09ld, %ld.%09ld]", (long)v.tv_sec,
		     v.tv_nsec, (long)s1.tv_sec, s1.tv_nsec, (long)s2.tv_sec, s2.tv_nsec);

	double ns_vdso = ns_per_call(0), ns_sys = ns_per_call(1);
	if (ns_vdso >= 1000.0)
		fail("clock_gettime takes %.0f ns per call (before the dump: %.0f ns)", ns_vdso, ns_before);
	if (ns_vdso * 2 > ns_sys)
		fail("clock_gettime takes %.0f ns per call, the syscall %.0f ns: not the vDSO path", ns_vdso, ns_sys);
	char note[128];
	snprintf(note, sizeof(note), "vdso %.1f ns (before %.1f ns), syscall %.1f ns\n", ns_vdso, ns_before, ns_sys);
	victim_write_file("stats", note);
	victim_finish();
}
