// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for CPU profiles: burns CPU in hot_a, hot_b and hot_c in the
 * ratio 6:3:1, called from main through run_round, for argv[1] seconds.
 * The three functions run the same loop body, so their cost is in
 * proportion to their iteration counts.
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

__attribute__((noinline)) void hot_a(void)
{
	BURN(6 * UNIT);
}

__attribute__((noinline)) void hot_b(void)
{
	BURN(3 * UNIT);
}

__attribute__((noinline)) void hot_c(void)
{
	BURN(1 * UNIT);
}

__attribute__((noinline)) static void run_round(void)
{
	hot_a();
	hot_b();
	hot_c();
	__asm__ volatile("" ::: "memory"); /* keeps run_round a real frame, not a tail call */
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 20; i++)
			run_round();
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	return 0;
}
