// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for short-lived processes: spins for argv[1] milliseconds
 * of wall time (default 30) in churn_spin, called as main -> churn_outer
 * -> churn_inner -> churn_spin, then exits. Wall time, so that a churn of
 * them lives 20-50 ms each however loaded the machine is. The clock (the
 * vDSO, no system call) is read once per burst of work, so nearly every
 * sample has churn_spin as its leaf.
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

static double elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) * 1e3 + (now.tv_nsec - start->tv_nsec) / 1e6;
}

__attribute__((noinline)) void churn_spin(double milliseconds)
{
	struct timespec start;
	unsigned long x = sink;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 500000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
	} while (elapsed_ms(&start) < milliseconds);
	sink = x;
}

/* The empty asm after each call keeps it from becoming a tail call: each frame stays. */
__attribute__((noinline)) void churn_inner(double milliseconds)
{
	churn_spin(milliseconds);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void churn_outer(double milliseconds)
{
	churn_inner(milliseconds);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	churn_outer(argc > 1 ? atof(argv[1]) : 30);
	__asm__ volatile("" ::: "memory");
	return 0;
}
