// SPDX-License-Identifier: Apache-2.0
/* A library that dlopen_spin loads late: its frames need a table kiln builds on demand. */
#include <time.h>

static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static void library_inner(void)
{
	for (int i = 0; i < 1000000; i++)
		sink = sink * 31 + i;
}

__attribute__((noinline)) void library_spin(double seconds)
{
	double end = now() + seconds;

	while (now() < end)
		library_inner();
	__asm__ volatile("" ::: "memory");
}
