// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for JIT code: copies a hand-assembled x86-64 loop into
 * anonymous executable memory, names it in /tmp/perf-PID.map as a JIT
 * runtime does, and calls it from main through run_jit for argv[1]
 * seconds. Stacks read jit_hot_loop <- run_jit <- main: the copied code
 * keeps the frame-pointer chain (push rbp; mov rbp, rsp).
 *
 * The perf map first names the whole region "stale_jit_code", then the
 * loop's bytes "jit_hot_loop": a later line wins, as when a code cache
 * reuses memory. On SIGUSR1 the program writes the same loop into a
 * memfd mapped executable (the double mapping .NET uses), appends
 * "jit memfd loop (tier 2)" to the map, and runs that one from then on.
 * It prints "phase 2" when it switched.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define REGION_SIZE 4096
#define CODE_OFFSET 256

/* long loop(long n): counts n down to zero, with a frame of its own. */
static const unsigned char loop_code[] = {
	0x55, /* push rbp */
	0x48, 0x89, 0xe5, /* mov rbp, rsp */
	0x48, 0x89, 0xf8, /* mov rax, rdi */
	0x48, 0xff, 0xc8, /* 1: dec rax */
	0x75, 0xfb, /* jnz 1b */
	0x5d, /* pop rbp */
	0xc3, /* ret */
};

typedef long (*loop_fn)(long);

static volatile sig_atomic_t switch_requested;

static void on_usr1(int signo)
{
	(void)signo;
	switch_requested = 1;
}

__attribute__((noinline)) static void run_jit(loop_fn loop, long iterations)
{
	loop(iterations);
	__asm__ volatile("" ::: "memory"); /* keeps run_jit a real frame, not a tail call */
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (now.tv_nsec - start->tv_nsec) / 1e9;
}

/* The loop in a memfd: written through one mapping, run through another. */
static loop_fn memfd_loop(void)
{
	int fd = memfd_create("kiln-jit", MFD_CLOEXEC);
	unsigned char *writable, *executable;

	if (fd < 0 || ftruncate(fd, REGION_SIZE) < 0)
		return NULL;
	writable = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	executable = mmap(NULL, REGION_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	if (writable == MAP_FAILED || executable == MAP_FAILED)
		return NULL;
	memcpy(writable + CODE_OFFSET, loop_code, sizeof(loop_code));
	return (loop_fn)(executable + CODE_OFFSET);
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10;
	unsigned char *region;
	struct timespec start;
	char path[64];
	loop_fn loop;
	FILE *map;

	signal(SIGUSR1, on_usr1);
	region = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	/* Named "[anon:kiln-jit]" where the kernel supports it; plain anonymous otherwise. */
	prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)region, REGION_SIZE,
	      (unsigned long)"kiln-jit");
	memcpy(region + CODE_OFFSET, loop_code, sizeof(loop_code));
	loop = (loop_fn)(region + CODE_OFFSET);

	snprintf(path, sizeof(path), "/tmp/perf-%d.map", getpid());
	map = fopen(path, "w");
	if (!map) {
		perror(path);
		return 1;
	}
	fprintf(map, "%lx %x stale_jit_code\n", (unsigned long)region, REGION_SIZE);
	fprintf(map, "%lx %zx jit_hot_loop\n", (unsigned long)loop, sizeof(loop_code));
	fflush(map);

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (seconds_since(&start) < seconds) {
		if (switch_requested == 1) {
			loop_fn second = memfd_loop();

			if (!second) {
				perror("memfd");
				return 1;
			}
			fprintf(map, "%lx %zx jit memfd loop (tier 2)\n", (unsigned long)second,
				sizeof(loop_code));
			fflush(map);
			loop = second;
			switch_requested = 2;
			printf("phase 2\n");
			fflush(stdout);
		}
		run_jit(loop, 20 * 1000 * 1000);
	}
	fclose(map);
	return 0;
}
