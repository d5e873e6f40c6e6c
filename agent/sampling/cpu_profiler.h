/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU sampler: loads bpf/cpu.bpf.c, attaches it to every CPU, drains windows. */
#ifndef KILN_CPU_PROFILER_H
#define KILN_CPU_PROFILER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/sampling/sampler.h"

struct cpu_profiler;
struct sampling;

struct cpu_profiler_opts {
	struct sampling *sampling; /* whose shared maps it uses, or creates */
	uint64_t frequency_hz;
	uint64_t max_stacks;
	uint64_t max_sample_keys;
	bool dwarf_unwinding; /* false: frame pointers only (--unwind fp) */
	bool kernel_fill; /* the kernel fills new processes' mappings where it can */
	bool python_frames; /* CPython's frames read (--python on, with DWARF unwinding) */
};

/*
 * Opens, configures and loads the BPF programs; attaches nothing yet
 * (sampler__start). NULL with errno set; EPERM means missing privileges.
 */
struct cpu_profiler *cpu_profiler__new(const struct cpu_profiler_opts *opts);

/* Its sampler: start (attaches to every online CPU), end windows, free. */
struct sampler *cpu_profiler__sampler(struct cpu_profiler *profiler);

/* CPUs currently sampled. */
unsigned int cpu_profiler__cpu_count(const struct cpu_profiler *profiler);

/* Attaches to CPUs that came online since the last call. Returns how many, or -errno. */
int cpu_profiler__attach_new_cpus(struct cpu_profiler *profiler);

#endif /* KILN_CPU_PROFILER_H */
