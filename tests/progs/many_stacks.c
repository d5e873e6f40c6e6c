// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for kiln's limits: burns CPU at the bottom of recursions of
 * every depth from 0 to 300, so it makes hundreds of distinct stacks, and
 * stacks deeper than the 127 (frame pointers) or 256 (DWARF) frames a
 * sample keeps.
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void descend(int depth)
{
	if (depth > 0) {
		descend(depth - 1);
		__asm__ volatile("" ::: "memory"); /* not a tail call */
		return;
	}
	for (int i = 0; i < 200000; i++)
		sink = sink * 31 + i;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	struct timespec start, now;
	int depth = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		descend(depth);
		depth = (depth + 7) % 301;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	return 0;
}
