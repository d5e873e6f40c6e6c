/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU sampler: loads bpf/cpu.bpf.c, attaches it to every CPU, drains windows. */
#ifndef KILN_CPU_PROFILER_H
#define KILN_CPU_PROFILER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/sampling/sampler.h"

struct counter_line;
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

/* Loader files watched at most: a host's, and one per distinct container image. */
#define CPU_PROFILER_MAX_LOADERS 32

/*
 * Fills new processes' mappings in the kernel at a dynamic loader's
 * debugger hook (a sleepable uprobe on its _dl_debug_state, bpf/cpu.bpf.c),
 * for every process that runs this loader file: once per file (device
 * major, minor and inode), up to CPU_PROFILER_MAX_LOADERS. path names it
 * for libbpf and the kernel (/proc/self/fd/N of a file the agent holds
 * open). 0 when watched (now or before); -EOPNOTSUPP without the loader
 * fill (the kernel's, or --no-kernel-fill); -ENOSPC past the bound; else
 * the attach's -errno (the file is not tried again). Each counted.
 */
int cpu_profiler__watch_loader(struct cpu_profiler *profiler, uint32_t dev_major,
			       uint32_t dev_minor, uint64_t inode, const char *path);

struct cpu_profiler_loader_stats {
	uint64_t watched; /* loader files with the uprobe attached */
	uint64_t refused; /* attach failed (no _dl_debug_state, or the kernel refused) */
	uint64_t over_limit; /* past CPU_PROFILER_MAX_LOADERS: not watched */
};

void cpu_profiler__loader_stats(const struct cpu_profiler *profiler,
				struct cpu_profiler_loader_stats *ret_stats);

/* Those counters, for the reporter: one source, a struct cpu_profiler_loader_stats. */
extern const struct counter_line cpu_profiler_loader_counter_line;

#endif /* KILN_CPU_PROFILER_H */
