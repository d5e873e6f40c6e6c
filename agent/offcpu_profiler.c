// SPDX-License-Identifier: Apache-2.0
/* Loads the off-CPU program, sharing the sampler's maps, and drains its buffers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/offcpu_profiler.h"
#include "bpf/offcpu.skel.h"
#include "lib/clock.h"

struct offcpu_profiler {
	struct offcpu_bpf *skel;
	uint64_t stats_at_window_start[OFFCPU_STAT__END];
};

struct offcpu_profiler *offcpu_profiler__new(const struct offcpu_profiler_opts *opts)
{
	struct offcpu_profiler *profiler = calloc(1, sizeof(*profiler));
	struct cpu_profiler_shared_fds fds;
	struct offcpu_bpf *skel;
	int err;

	if (!profiler)
		return NULL;
	skel = profiler->skel = offcpu_bpf__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	skel->rodata->filter_pids = opts->filter_pids;
	skel->rodata->dwarf_unwinding = opts->dwarf_unwinding;
	skel->rodata->min_block_ns = opts->min_block_ns;
	skel->rodata->state_mask = opts->state_mask;
	bpf_map__set_max_entries(skel->maps.user_stacks_0, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.user_stacks_1, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.kernel_stacks_0, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.kernel_stacks_1, opts->max_stacks);
	bpf_map__set_max_entries(skel->maps.counts_0, opts->max_sample_keys);
	bpf_map__set_max_entries(skel->maps.counts_1, opts->max_sample_keys);

	/* One process table, filter and set of unwind tables for both programs. */
	cpu_profiler__shared_fds(opts->cpu, &fds);
	if (bpf_map__reuse_fd(skel->maps.pid_filter, fds.pid_filter) ||
	    bpf_map__reuse_fd(skel->maps.known_processes, fds.known_processes) ||
	    bpf_map__reuse_fd(skel->maps.process_events, fds.process_events) ||
	    bpf_map__reuse_fd(skel->maps.unwind_tables, fds.unwind_tables) ||
	    bpf_map__reuse_fd(skel->maps.process_unwind, fds.process_unwind)) {
		err = -errno;
		goto fail;
	}
	err = offcpu_bpf__load(skel);
	if (err)
		goto fail;
	err = offcpu_bpf__attach(skel);
	if (err)
		goto fail;
	read_percpu_counters(bpf_map__fd(skel->maps.stats), OFFCPU_STAT__END,
			     profiler->stats_at_window_start);
	/* Blocks under way at start began before kiln: charged from now on only. */
	skel->bss->window_start_ns = clock_ns(CLOCK_MONOTONIC);
	return profiler;
fail:
	offcpu_profiler__free(profiler);
	errno = -err;
	return NULL;
}

void offcpu_profiler__free(struct offcpu_profiler *profiler)
{
	if (!profiler)
		return;
	offcpu_bpf__destroy(profiler->skel);
	free(profiler);
}

int offcpu_profiler__end_window(struct offcpu_profiler *profiler, struct cpu_window *ret_window)
{
	struct offcpu_bpf *skel = profiler->skel;
	const struct window_buffers buffers =
		WINDOW_BUFFERS_OF(skel, OFFCPU_STAT__END, profiler->stats_at_window_start);

	/* Blocks that began before this moment are charged from here on only. */
	__atomic_store_n(&skel->bss->window_start_ns, clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
	return window_buffers__end_window(&buffers, ret_window);
}

int offcpu_profiler__bpf_run_stats(const struct offcpu_profiler *profiler,
				   uint64_t *ret_run_time_ns, uint64_t *ret_run_count)
{
	return bpf_program_run_stats(profiler->skel->progs.sched_switch, ret_run_time_ns,
				     ret_run_count);
}
