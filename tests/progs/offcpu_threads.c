// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for off-CPU profiles, four threads for argv[1] seconds:
 * "sleeper" waits in nanosleep nearly all the time (sleeper_wait), "reader"
 * blocks in read() on a pipe (reader_wait) that "feeder" writes every
 * 100 ms, and "spinner" never blocks (spinner_spin).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double deadline;
static int pipe_fds[2];
static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void sleeper_wait(void)
{
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	nanosleep(&pause, NULL);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) int reader_wait(void)
{
	char byte;
	int n = (int)read(pipe_fds[0], &byte, 1);

	__asm__ volatile("" ::: "memory");
	return n;
}

__attribute__((noinline)) void spinner_spin(void)
{
	for (int i = 0; i < 1000000; i++)
		sink = sink * 31 + i;
}

static void *sleeper(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "sleeper");
	while (now() < deadline)
		sleeper_wait();
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "reader");
	while (reader_wait() > 0)
		;
	return NULL;
}

static void *feeder(void *arg)
{
	struct timespec pause = { 0, 100 * 1000 * 1000 };

	(void)arg;
	pthread_setname_np(pthread_self(), "feeder");
	while (now() < deadline) {
		nanosleep(&pause, NULL);
		if (write(pipe_fds[1], "x", 1) != 1)
			break;
	}
	close(pipe_fds[1]);
	return NULL;
}

static void *spinner(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "spinner");
	while (now() < deadline)
		spinner_spin();
	return NULL;
}

int main(int argc, char **argv)
{
	void *(*bodies[])(void *) = { sleeper, reader, feeder, spinner };
	pthread_t threads[4];

	deadline = now() + (argc > 1 ? atof(argv[1]) : 5);
	if (pipe(pipe_fds))
		return 1;
	for (int i = 0; i < 4; i++)
		pthread_create(&threads[i], NULL, bodies[i], NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	return 0;
}
