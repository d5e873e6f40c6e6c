/* SPDX-License-Identifier: Apache-2.0 */
/* Turns one drained window (CPU samples or off-CPU blocks) into a symbolized pprof file. */
#ifndef KILN_WINDOW_PROFILE_H
#define KILN_WINDOW_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/sampling/cpu_profiler.h"

struct process_table;
struct symbolizer;

struct window_profile_meta {
	int64_t start_ns; /* window start, Unix time */
	int64_t duration_ns;
	uint64_t period_ns; /* CPU time one sample stands for */
	const char *path; /* where the .pb.gz goes */
	const char *comment; /* provenance, stored in Profile.comment; NULL for none */
	bool off_cpu; /* blocks: samples/count and off_cpu/nanoseconds, a state label */
};

struct window_profile_result {
	uint64_t samples; /* sampled events (CPU) or blocks (off-CPU) in the profile */
	uint64_t stacks_missing; /* referenced stack not in the drained map */
	uint64_t frames; /* frames resolved through the symbolizer */
	uint64_t frames_without_mapping; /* user address in no known mapping */
	uint64_t frames_without_symbol;
};

/* Builds the profile and writes it atomically. Returns 0 or a negative errno. */
int window_profile__write(const struct cpu_window *window, const struct process_table *processes,
			  struct symbolizer *symbolizer, const struct window_profile_meta *meta,
			  struct window_profile_result *ret_result);

/* Called with one process's gzip-compressed profile; non-zero stops the walk. */
typedef int (*window_profile_process_fn)(void *ctx, uint32_t pid, const char *comm,
					 const uint8_t *data, size_t size);

/*
 * Builds one profile per process in the window (what Pyroscope and Parca
 * store as a series) and hands each to fn. One builder lives at a time.
 * meta->path is not used. Returns 0, fn's error, or a negative errno.
 */
int window_profile__for_each_process(const struct cpu_window *window,
				     const struct process_table *processes,
				     struct symbolizer *symbolizer,
				     const struct window_profile_meta *meta,
				     window_profile_process_fn fn, void *fn_ctx,
				     struct window_profile_result *ret_result);

#endif /* KILN_WINDOW_PROFILE_H */
