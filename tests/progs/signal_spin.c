// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for signal frames: main spins in interrupted_work; every
 * 100 ms SIGALRM runs a handler that spins in handler_spin for ~50 ms. A
 * sample in the handler must unwind through the kernel's signal frame:
 * handler_spin <- on_alarm <- __restore_rt <- interrupted_work <- main.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static volatile unsigned long sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) void handler_spin(void)
{
	double end = now() + 0.05;

	while (now() < end)
		for (int i = 0; i < 100000; i++)
			sink = sink * 31 + i;
}

__attribute__((noinline)) void on_alarm(int signo)
{
	(void)signo;
	handler_spin();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void interrupted_work(double seconds)
{
	double end = now() + seconds;

	while (now() < end)
		for (int i = 0; i < 100000; i++)
			sink = sink * 17 + i;
}

int main(int argc, char **argv)
{
	struct itimerval timer = { { 0, 100000 }, { 0, 100000 } };
	struct sigaction action = { .sa_handler = on_alarm };

	sigaction(SIGALRM, &action, NULL);
	setitimer(ITIMER_REAL, &timer, NULL);
	interrupted_work(argc > 1 ? atof(argv[1]) : 5);
	return 0;
}
