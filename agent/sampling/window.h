/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A sampling window: what one buffer of a profiling program held when the
 * window ended (samples or blocks, their stacks, counter increases), and
 * the double buffer every program fills, the same for CPU and off-CPU.
 */
#ifndef KILN_SAMPLING_WINDOW_H
#define KILN_SAMPLING_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "bpf/offcpu.h"

struct bpf_map;
struct bpf_program;
struct hashmap;
struct sampler;

/* The most counters a program's stats map holds: CPU_STAT_* then OFFCPU_STAT_*. */
#define SAMPLE_WINDOW_MAX_STATS OFFCPU_STAT__END

/* A stack as drained from BPF, stored compactly (only its frames). */
struct drained_stack {
	uint32_t frame_count;
	uint32_t end; /* enum stack_end */
	uint64_t addresses[]; /* leaf first */
};

struct drained_sample {
	struct sample_key key;
	struct sample_value value;
};

/* Everything one window's buffer held. */
struct sample_window {
	const struct sampler *sampler; /* whose buffer it was */
	bool off_cpu; /* blocks of off-CPU time, not CPU samples */
	struct drained_sample *samples;
	size_t sample_count;
	struct hashmap *stacks; /* stack id -> struct drained_stack * */
	/* Increase during the window, all CPUs: CPU_STAT_* and, off-CPU, OFFCPU_STAT_*. */
	uint64_t stats[SAMPLE_WINDOW_MAX_STATS];
};

void sample_window__free(struct sample_window *window);
const struct drained_stack *sample_window__stack(const struct sample_window *window, uint64_t id);

/*
 * A program's double buffer: the .bss global that selects the buffer
 * samples go to, both buffers' maps, and its per-CPU counters.
 */
struct window_buffers {
	uint32_t *active_buffer;
	struct bpf_map *user_stacks[2];
	struct bpf_map *kernel_stacks[2];
	struct bpf_map *counts[2];
	struct bpf_map *stats;
	uint32_t stat_count; /* at most SAMPLE_WINDOW_MAX_STATS */
	uint64_t *stats_at_window_start; /* stat_count counters, updated */
};

/* The double buffer of a skeleton whose maps have the names bpf/maps.bpf.h gives. */
#define WINDOW_BUFFERS_OF(skel, count, stats_at_start)                                             \
	((struct window_buffers){                                                                  \
		.active_buffer = &(skel)->bss->active_buffer,                                      \
		.user_stacks = { (skel)->maps.user_stacks_0, (skel)->maps.user_stacks_1 },         \
		.kernel_stacks = { (skel)->maps.kernel_stacks_0, (skel)->maps.kernel_stacks_1 },   \
		.counts = { (skel)->maps.counts_0, (skel)->maps.counts_1 },                        \
		.stats = (skel)->maps.stats,                                                       \
		.stat_count = (count),                                                             \
		.stats_at_window_start = (stats_at_start),                                         \
	})

/* Before the skeleton's load: both buffers hold max_stacks stacks of each kind, max_keys keys. */
void window_buffers__set_sizes(const struct window_buffers *buffers, uint64_t max_stacks,
			       uint64_t max_keys);

/* After the load: the counters from which the first window's increase is taken. */
void window_buffers__start(const struct window_buffers *buffers);

/*
 * Ends a window: new data goes to the other buffer, this one is drained
 * into *ret_window and emptied, and the counters' increase is taken.
 * Returns 0 or a negative errno.
 */
int window_buffers__end_window(const struct window_buffers *buffers,
			       struct sample_window *ret_window);

/* Sums a per-CPU array of counters; absent entries read as 0. */
void read_percpu_counters(int fd, uint32_t count, uint64_t *ret_totals);

/* Run time and count of a BPF program (counted while kernel.bpf_stats_enabled=1). */
int bpf_program_run_stats(const struct bpf_program *program, uint64_t *ret_run_time_ns,
			  uint64_t *ret_run_count);

#endif /* KILN_SAMPLING_WINDOW_H */
