// SPDX-License-Identifier: Apache-2.0
/*
 * Ground truth for libraries loaded late: waits argv[1] seconds, dlopens
 * argv[2] and spins in its library_spin for argv[3] seconds, so stacks read
 * library_inner <- library_spin <- run_library <- main.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void run_library(void (*spin)(double), double seconds)
{
	spin(seconds);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	void *library;
	void (*spin)(double);

	if (argc < 4) {
		fprintf(stderr, "usage: %s DELAY LIBRARY SECONDS\n", argv[0]);
		return 2;
	}
	usleep((useconds_t)(atof(argv[1]) * 1e6));
	library = dlopen(argv[2], RTLD_NOW);
	if (!library || !(spin = (void (*)(double))dlsym(library, "library_spin"))) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	run_library(spin, atof(argv[3]));
	return 0;
}
