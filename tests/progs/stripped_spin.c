// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for debuginfod: burns CPU in spin_named_by_debuginfod,
 * called from main, for argv[1] seconds. The debuginfod tests strip a copy
 * (no .symtab, no .gnu_debuglink), so only a debug file fetched by build id
 * can name the function.
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void spin_named_by_debuginfod(double seconds)
{
	struct timespec start, now;
	unsigned long x = sink;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (unsigned long i = 0; i < 1000000; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
		sink = x;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
}

int main(int argc, char **argv)
{
	spin_named_by_debuginfod(argc > 1 ? atof(argv[1]) : 10);
	return 0;
}
