/* SPDX-License-Identifier: Apache-2.0 */
/* The off-CPU profiler: loads bpf/offcpu.bpf.c, with or without the CPU sampler, drains windows. */
#ifndef KILN_OFFCPU_PROFILER_H
#define KILN_OFFCPU_PROFILER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/sampling/sampler.h"

struct offcpu_profiler;
struct sampling;

struct offcpu_profiler_opts {
	struct sampling *sampling; /* whose shared maps it uses, or creates */
	bool dwarf_unwinding;
	uint64_t min_block_ns; /* shorter blocks are counted, without stacks */
	uint32_t state_mask; /* bit per enum offcpu_state */
	uint64_t max_stacks;
	uint64_t max_sample_keys;
	int hooks; /* enum offcpu_hooks, or -1 for the best the kernel offers */
};

/* Loads; attaches nothing yet (sampler__start). NULL with errno set. */
struct offcpu_profiler *offcpu_profiler__new(const struct offcpu_profiler_opts *opts);

/*
 * Its sampler. Ending a window charges threads still blocked to it (their
 * time so far), then swaps buffers and drains the ended window.
 */
struct sampler *offcpu_profiler__sampler(struct offcpu_profiler *profiler);

/* The enum offcpu_hooks in use. */
int offcpu_profiler__hooks(const struct offcpu_profiler *profiler);
const char *offcpu_hooks__name(int hooks);

#endif /* KILN_OFFCPU_PROFILER_H */
