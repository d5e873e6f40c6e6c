// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for CPU profiles: burns CPU in hot_a, hot_b and hot_c in the
 * ratio 6:3:1, called from main through run_round, for argv[1] seconds.
 * The three functions run the same loop body, so their cost is in
 * proportion to their iteration counts.
 *
 * Each round's length is drawn at random (0.5 to 1.5 units, the same for
 * all three functions, so every round keeps the 6:3:1 ratio). With rounds
 * of one fixed length the program is periodic, and a periodic sampler
 * (kiln's or perf's cpu-clock at 199 Hz) aliases with it: samples fall on
 * the same phases of the round run after run, and a 4 s window came out
 * 69:24:7 on a loaded machine. Random lengths make the phases uniform.
 */
#include <stdlib.h>
#include <time.h>

#define UNIT 200000

static volatile unsigned long sink;

#define BURN(iterations)                                                                           \
	do {                                                                                       \
		unsigned long x = sink;                                                            \
		for (unsigned long i = 0; i < (iterations); i++)                                   \
			x = x * 6364136223846793005UL + 1442695040888963407UL;                     \
		sink = x;                                                                          \
	} while (0)

__attribute__((noinline)) void hot_a(unsigned long unit)
{
	BURN(6 * unit);
}

__attribute__((noinline)) void hot_b(unsigned long unit)
{
	BURN(3 * unit);
}

__attribute__((noinline)) void hot_c(unsigned long unit)
{
	BURN(1 * unit);
}

/* xorshift64: a round length that no sampler's period lines up with. */
static unsigned long next_unit(unsigned long *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return UNIT / 2 + *state % UNIT;
}

__attribute__((noinline)) static void run_round(unsigned long unit)
{
	hot_a(unit);
	hot_b(unit);
	hot_c(unit);
	__asm__ volatile("" ::: "memory"); /* keeps run_round a real frame, not a tail call */
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	unsigned long state = (unsigned long)start.tv_nsec | 1;
	do {
		for (int i = 0; i < 20; i++)
			run_round(next_unit(&state));
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	return 0;
}
