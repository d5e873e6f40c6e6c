// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for ld.so's lazy-binding trampoline: dlopens argv[1] (built
 * from lib/many.c) with RTLD_LAZY and runs its many_run, whose 4096 first
 * calls are each resolved by ld.so, so most of this process's time is
 * there: ... <- many_run <- run_many <- main.
 */
#include <dlfcn.h>
#include <stdio.h>

__attribute__((noinline)) static int run_many(int (*run)(int))
{
	int x = run(1);

	__asm__ volatile("" ::: "memory");
	return x;
}

int main(int argc, char **argv)
{
	void *library;
	int (*run)(int);

	if (argc < 2) {
		fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
		return 2;
	}
	library = dlopen(argv[1], RTLD_LAZY);
	if (!library || !(run = (int (*)(int))dlsym(library, "many_run"))) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	return run_many(run) == 0;
}
