/*
 * busy: a pure user-space loop, interrupted by the dump in the middle of its arithmetic.
 *
 * The loop runs in chunks of 1M iterations of an integer recurrence (general-purpose registers), a double
 * recurrence (SSE registers) and, where the CPU has AVX2, an 8 x u32 recurrence held in a ymm register.
 * Its only syscall is a stat() of the check file between chunks. After each chunk it recomputes the chunk
 * from the snapshot it took before it: a register that the restore lost or corrupted mid-chunk makes the
 * two differ. The chunk counter must only ever go up by one. A small struct in memory keeps a checksum.
 */
#include "victim.h"

#define CHUNK (1u << 20)

typedef uint32_t v8u __attribute__((vector_size(32)));

struct regs_state {
	uint64_t acc;
	double f;
	v8u v;
};

static struct {
	uint64_t vals[16];
	uint64_t sum;
} cold;

static int have_avx2;

__attribute__((noinline)) static void advance_scalar(struct regs_state *s, uint32_t n)
{
	uint64_t acc = s->acc;
	double f = s->f;
	for (uint32_t i = 0; i < n; i++) {
		acc = (acc * 6364136223846793005ULL + 1442695040888963407ULL) ^ (acc >> 29);
		f = f * 0.9999999 + 1.0;
	}
	s->acc = acc;
	s->f = f;
}

__attribute__((noinline, target("avx2"))) static void advance_avx2(struct regs_state *s, uint32_t n)
{
	uint64_t acc = s->acc;
	double f = s->f;
	v8u v = s->v;
	for (uint32_t i = 0; i < n; i++) {
		acc = (acc * 6364136223846793005ULL + 1442695040888963407ULL) ^ (acc >> 29);
		f = f * 0.9999999 + 1.0;
		v = (v * 1664525u + 1013904223u) ^ (v >> 13);
	}
	s->acc = acc;
	s->f = f;
	s->v = v;
}

static void advance(struct regs_state *s, uint32_t n)
{
	if (have_avx2)
		advance_avx2(s, n);
	else
		advance_scalar(s, n);
}

int main(int argc, char **argv)
{
	victim_init(argc, argv);
	__builtin_cpu_init();
	have_avx2 = __builtin_cpu_supports("avx2") != 0;
	pattern_fill(cold.vals, sizeof(cold.vals), 0xb051);
	cold.sum = checksum(cold.vals, sizeof(cold.vals));

	struct regs_state live = { .acc = 0x1234567, .f = 1.0, .v = { 1, 2, 3, 4, 5, 6, 7, 8 } };
	uint64_t chunks = 0, mismatches = 0;
	victim_ready();
	const uint64_t chunks_at_ready = chunks;
	double ready_time = victim_now();

	for (;;) {
		struct regs_state snap = live, ref;
		uint64_t before = chunks;
		advance(&live, CHUNK);
		chunks++;
		ref = snap;
		advance(&ref, CHUNK);
		if (ref.acc != live.acc || memcmp(&ref.f, &live.f, sizeof(double)) != 0 ||
		    memcmp(&ref.v, &live.v, sizeof(v8u)) != 0) {
			if (mismatches++ == 0)
				fail("chunk %llu: registers diverged from the recomputation (acc %llx vs %llx, f %a vs "
				     "%a, v[0] %x vs %x)",
				     (unsigned long long)chunks, (unsigned long long)live.acc,
				     (unsigned long long)ref.acc, live.f, ref.f, live.v[0], ref.v[0]);
		}
		if (chunks != before + 1)
			fail("chunk counter jumped from %llu to %llu", (unsigned long long)before,
			     (unsigned long long)chunks);
		if (victim_check_requested())
			break;
	}

	if (chunks <= chunks_at_ready + 1)
		fail("the loop made no progress (%llu chunks)", (unsigned long long)chunks);
	if (checksum(cold.vals, sizeof(cold.vals)) != cold.sum || pattern_verify(cold.vals, sizeof(cold.vals), 0xb051) >= 0)
		fail("state struct checksum differs");
	if (mismatches > 1)
		fail("%llu chunks diverged in all", (unsigned long long)mismatches);
	char note[64];
	snprintf(note, sizeof(note), "%llu chunks in %.1f s, avx2=%d\n", (unsigned long long)chunks,
		 victim_now() - ready_time, have_avx2);
	victim_write_file("stats", note);
	victim_finish();
}
