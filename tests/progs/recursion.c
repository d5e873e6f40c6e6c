// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for deep stacks: main calls recurse(120), which calls itself
 * down to depth 1 and spins there, so every sample's stack is the spin
 * frame, 120 recurse frames in order, then main.
 */
#include <stdlib.h>
#include <time.h>

#define DEPTH 120

static volatile unsigned long sink;
static double deadline;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void bottom(void)
{
	for (int i = 0; i < 5000000; i++)
		sink = sink * 31 + i;
}

__attribute__((noinline)) int recurse(int depth)
{
	int below;

	if (depth == 1) {
		while (now() < deadline)
			bottom();
		return 1;
	}
	below = recurse(depth - 1);
	return below + (int)(sink & 1); /* work after the call: no tail call */
}

int main(int argc, char **argv)
{
	deadline = now() + (argc > 1 ? atof(argv[1]) : 5);
	return recurse(DEPTH) > 1000;
}
