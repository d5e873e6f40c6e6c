// SPDX-License-Identifier: Apache-2.0
/*
 * Threads that come and go: THREADS threads (argv[1], default 300), ten at a
 * time, each blocking three times for 3 ms in churn_wait() and exiting. Every
 * one leaves kiln a long block whose user stack it asks for, and an exit
 * that must clear what kiln keeps for the thread by its id. main first
 * sleeps a second: kiln learns of the process from that block and loads its
 * unwind tables before the churn.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) void churn_wait(void)
{
	struct timespec pause = { 0, 3 * 1000 * 1000 };

	nanosleep(&pause, NULL);
	__asm__ volatile("" ::: "memory");
}

static void *churn_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < 3; i++)
		churn_wait();
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 300;

	sleep(1);
	for (int done = 0; done < threads; done += 10) {
		pthread_t batch[10];

		for (int i = 0; i < 10; i++)
			pthread_create(&batch[i], NULL, churn_thread, NULL);
		for (int i = 0; i < 10; i++)
			pthread_join(batch[i], NULL);
	}
	return 0;
}
