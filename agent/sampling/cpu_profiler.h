/* SPDX-License-Identifier: Apache-2.0 */
/* The CPU sampler: loads bpf/cpu.bpf.c, attaches it to every CPU, drains windows. */
#ifndef KILN_CPU_PROFILER_H
#define KILN_CPU_PROFILER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "bpf/offcpu.h"

struct cpu_profiler;
struct hashmap;

typedef void (*process_event_fn)(void *ctx, const struct process_event *event);

struct cpu_profiler_opts {
	uint64_t frequency_hz;
	const uint32_t *pids; /* filter; NULL/0: every process */
	size_t pid_count;
	uint64_t max_stacks;
	uint64_t max_sample_keys;
	uint64_t max_processes; /* processes the DWARF unwinder knows */
	bool dwarf_unwinding; /* false: frame pointers only (--unwind fp) */
	process_event_fn on_process_event;
	void *ctx;
};

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
struct cpu_window {
	struct drained_sample *samples;
	size_t sample_count;
	struct hashmap *stacks; /* stack id -> struct drained_stack * */
	/* Increase during the window, all CPUs: CPU_STAT_* and, off-CPU, OFFCPU_STAT_*. */
	uint64_t stats[OFFCPU_STAT__END];
};

/*
 * Opens, configures and loads the BPF programs. NULL with errno set; EPERM
 * means missing privileges.
 */
struct cpu_profiler *cpu_profiler__new(const struct cpu_profiler_opts *opts);

/* Starts sampling: attaches to every online CPU. 0 or a negative errno. */
int cpu_profiler__start(struct cpu_profiler *profiler);
/* Detaches and unloads everything; accepts NULL. */
void cpu_profiler__free(struct cpu_profiler *profiler);

/* CPUs currently sampled. */
unsigned int cpu_profiler__cpu_count(const struct cpu_profiler *profiler);

/* Attaches to CPUs that came online since the last call. Returns how many, or -errno. */
int cpu_profiler__attach_new_cpus(struct cpu_profiler *profiler);

/*
 * For a consumer on a thread of its own: a descriptor that polls readable
 * when process events wait, and the call that hands them all to the
 * callback without waiting. One thread at a time may consume.
 */
int cpu_profiler__events_fd(const struct cpu_profiler *profiler);
int cpu_profiler__consume(struct cpu_profiler *profiler);

/*
 * Ends the current window: new samples go to the other buffer, this one is
 * drained into *ret_window and emptied. Returns 0 or a negative errno.
 */
int cpu_profiler__end_window(struct cpu_profiler *profiler, struct cpu_window *ret_window);
void cpu_window__free(struct cpu_window *window);
const struct drained_stack *cpu_window__stack(const struct cpu_window *window, uint64_t id);

/* The agent forgot this process: the next sample announces it again. */
void cpu_profiler__forget_process(struct cpu_profiler *profiler, uint32_t pid);

/* Maps the off-CPU program shares with the sampler. */
struct cpu_profiler_shared_fds {
	int pid_filter;
	int known_processes;
	int process_events;
	int unwind_tables;
	int process_unwind;
};

void cpu_profiler__shared_fds(const struct cpu_profiler *profiler,
			      struct cpu_profiler_shared_fds *ret_fds);

/*
 * A program's double buffer, as every profiling program has one: the .bss
 * global that selects the buffer samples go to, both buffers' maps, and
 * its per-CPU counters.
 */
struct bpf_map;
struct bpf_program;
struct window_buffers {
	uint32_t *active_buffer;
	struct bpf_map *user_stacks[2];
	struct bpf_map *kernel_stacks[2];
	struct bpf_map *counts[2];
	int stats_fd;
	uint32_t stat_count; /* at most OFFCPU_STAT__END */
	uint64_t *stats_at_window_start; /* stat_count counters, updated */
};

/* The double buffer of a skeleton whose maps have the names bpf/maps.bpf.h gives. */
#define WINDOW_BUFFERS_OF(skel, count, stats_at_start)                                             \
	((struct window_buffers){                                                                  \
		.active_buffer = &(skel)->bss->active_buffer,                                      \
		.user_stacks = { (skel)->maps.user_stacks_0, (skel)->maps.user_stacks_1 },         \
		.kernel_stacks = { (skel)->maps.kernel_stacks_0, (skel)->maps.kernel_stacks_1 },   \
		.counts = { (skel)->maps.counts_0, (skel)->maps.counts_1 },                        \
		.stats_fd = bpf_map__fd((skel)->maps.stats),                                       \
		.stat_count = (count),                                                             \
		.stats_at_window_start = (stats_at_start),                                         \
	})

/*
 * Ends a window: new data goes to the other buffer, this one is drained
 * into *ret_window and emptied, and the counters' increase is taken.
 * Returns 0 or a negative errno.
 */
int window_buffers__end_window(const struct window_buffers *buffers, struct cpu_window *ret_window);

/* Sums a per-CPU array of counters; absent entries read as 0. */
void read_percpu_counters(int fd, uint32_t count, uint64_t *ret_totals);

/* Run time and count of a BPF program (counted while kernel.bpf_stats_enabled=1). */
int bpf_program_run_stats(const struct bpf_program *program, uint64_t *ret_run_time_ns,
			  uint64_t *ret_run_count);

/* BPF run time and run count of the sampling program (needs kernel.bpf_stats_enabled). */
int cpu_profiler__bpf_run_stats(const struct cpu_profiler *profiler, uint64_t *ret_run_time_ns,
				uint64_t *ret_run_count);

#endif /* KILN_CPU_PROFILER_H */
