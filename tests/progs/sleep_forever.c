// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for off-CPU time: a process whose only thread sleeps 100% of
 * the time, in pause() under hold_still(), from before kiln starts until it
 * is killed. Every window must charge it the window's whole length.
 */
#include <unistd.h>

__attribute__((noinline)) void hold_still(void)
{
	for (;;)
		pause();
}

int main(void)
{
	hold_still();
	return 0;
}
