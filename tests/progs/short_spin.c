// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for short-lived processes: burns argv[1] milliseconds of
 * CPU time in short_hot, called from main, then exits. CPU time, not
 * wall time, so that its share of samples does not depend on how busy
 * the machine is. A burst of these is symbolized only if kiln reads each
 * one while it lives.
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

__attribute__((noinline)) void short_hot(double milliseconds)
{
	struct timespec start;
	unsigned long x = sink;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
	do {
		for (int i = 0; i < 200000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
	} while (elapsed_ms(&start) < milliseconds);
	sink = x;
}

int main(int argc, char **argv)
{
	short_hot(argc > 1 ? atof(argv[1]) : 50);
	__asm__ volatile("" ::: "memory"); /* keeps main's frame below short_hot */
	return 0;
}
