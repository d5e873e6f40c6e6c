// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for --pid: the main thread only waits; after argv[1] seconds
 * it starts a thread named "late_spinner" that burns CPU in late_spin for
 * argv[2] seconds. A --pid filter set before the thread exists must still
 * see it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static double spin_seconds;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void late_spin(void)
{
	double end = now() + spin_seconds;

	while (now() < end)
		for (int i = 0; i < 1000000; i++)
			sink = sink * 31 + i;
}

static void *thread_main(void *arg)
{
	(void)arg;
	/* Named by the thread itself, before its first sample can be taken. */
	pthread_setname_np(pthread_self(), "late_spinner");
	late_spin();
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t thread;

	spin_seconds = argc > 2 ? atof(argv[2]) : 3;
	usleep((useconds_t)((argc > 1 ? atof(argv[1]) : 1) * 1e6));
	pthread_create(&thread, NULL, thread_main, NULL);
	pthread_join(thread, NULL);
	return 0;
}
