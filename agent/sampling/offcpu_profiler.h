/* SPDX-License-Identifier: Apache-2.0 */
/* The off-CPU profiler: loads bpf/offcpu.bpf.c beside the CPU sampler, drains windows. */
#ifndef KILN_OFFCPU_PROFILER_H
#define KILN_OFFCPU_PROFILER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/sampling/cpu_profiler.h"

struct offcpu_profiler;

struct offcpu_profiler_opts {
	const struct cpu_profiler *cpu; /* whose process, filter and unwinder maps it shares */
	bool filter_pids;
	bool dwarf_unwinding;
	uint64_t min_block_ns; /* shorter blocks are counted, without stacks */
	uint32_t state_mask; /* bit per enum offcpu_state */
	uint64_t max_stacks;
	uint64_t max_sample_keys;
	int hooks; /* enum offcpu_hooks, or -1 for the best the kernel offers */
};

/* Loads and attaches; NULL with errno set. */
struct offcpu_profiler *offcpu_profiler__new(const struct offcpu_profiler_opts *opts);
void offcpu_profiler__free(struct offcpu_profiler *profiler);

/* The enum offcpu_hooks in use. */
int offcpu_profiler__hooks(const struct offcpu_profiler *profiler);
const char *offcpu_hooks__name(int hooks);

/*
 * Charges threads still blocked to the ending window (their time so far),
 * then swaps buffers and drains the ended window, as cpu_profiler__end_window does. */
int offcpu_profiler__end_window(struct offcpu_profiler *profiler, struct cpu_window *ret_window);

/* BPF run time and count of the sched_switch program (kernel.bpf_stats_enabled). */
int offcpu_profiler__bpf_run_stats(const struct offcpu_profiler *profiler,
				   uint64_t *ret_run_time_ns, uint64_t *ret_run_count);

#endif /* KILN_OFFCPU_PROFILER_H */
