// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for unwinding through glibc: all the time goes to spin(),
 * called from the qsort comparator, inside glibc's qsort. The stack must
 * read spin <- compare_ints <- (glibc's qsort internals) <- sort_array <- main.
 */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;

__attribute__((noinline)) void spin(void)
{
	for (int i = 0; i < 20000; i++)
		sink = sink * 31 + i;
}

__attribute__((noinline)) int compare_ints(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	spin();
	return (x > y) - (x < y);
}

__attribute__((noinline)) void sort_array(int *values, size_t count)
{
	qsort(values, count, sizeof(*values), compare_ints);
	__asm__ volatile("" ::: "memory"); /* not a tail call */
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5;
	struct timespec start, now;
	int values[64];

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 64; i++)
			values[i] = rand();
		sort_array(values, 64);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 <
		 seconds);
	return 0;
}
