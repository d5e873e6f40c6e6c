// SPDX-License-Identifier: Apache-2.0
/* Loads the off-CPU program, with sampling's shared maps; charges blocks at window ends. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/sampling/features.h"
#include "agent/sampling/offcpu_profiler.h"
#include "agent/sampling/sampler_counters.h"
#include "agent/sampling/sampling.h"
#include "bpf/offcpu.skel.h"
#include "lib/clock.h"
#include "lib/log.h"

struct offcpu_profiler {
	struct sampler sampler;
	struct offcpu_bpf *skel;
	int hooks; /* enum offcpu_hooks */
	struct bpf_program *switch_program; /* the sched_switch program in use */
	uint64_t stats_at_window_start[OFFCPU_STAT__END];
};

static const char *const hook_names[OFFCPU_HOOKS__COUNT] = {
	[OFFCPU_HOOKS_TASK_WORK] = "tp_btf sched_switch, user stacks by task work",
	[OFFCPU_HOOKS_SYS_EXIT] = "tp_btf sched_switch and sys_exit",
	[OFFCPU_HOOKS_RAW_TP] = "raw_tp sched_switch and sys_exit",
};

const char *offcpu_hooks__name(int hooks)
{
	return hooks >= 0 && hooks < OFFCPU_HOOKS__COUNT ? hook_names[hooks] : "unknown";
}

/*
 * The best hooks this kernel offers: task works from sched_switch when its
 * verifier allows them (6.18, and not every 6.18), else BTF-typed
 * tracepoints, else raw ones.
 */
static int probe_hooks(void)
{
	struct btf *vmlinux;
	const char *reason;
	int hooks = OFFCPU_HOOKS_RAW_TP;

	if (!features__probe(FEATURE_TASK_WORK_IN_TRACEPOINT, &reason))
		return OFFCPU_HOOKS_TASK_WORK;
	vmlinux = btf__load_vmlinux_btf();
	if (vmlinux &&
	    btf__find_by_name_kind(vmlinux, "btf_trace_sched_switch", BTF_KIND_TYPEDEF) >= 0)
		hooks = OFFCPU_HOOKS_SYS_EXIT;
	btf__free(vmlinux);
	log_info("off-CPU user stacks are taken at syscall exit, not by task work: %s", reason);
	return hooks;
}

/* Loads only the programs of the chosen hooks. */
static void select_programs(struct offcpu_profiler *profiler)
{
	struct offcpu_bpf *skel = profiler->skel;
	struct bpf_program *wanted[OFFCPU_HOOKS__COUNT][3] = {
		[OFFCPU_HOOKS_TASK_WORK] = { skel->progs.sched_switch, skel->progs.thread_exit },
		[OFFCPU_HOOKS_SYS_EXIT] = { skel->progs.sched_switch_sys_exit,
					    skel->progs.syscall_return },
		[OFFCPU_HOOKS_RAW_TP] = { skel->progs.sched_switch_raw,
					  skel->progs.syscall_return_raw,
					  skel->progs.thread_exit_raw },
	};
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, prog == skel->progs.blocked_tasks);
	for (int i = 0; i < 3; i++)
		if (wanted[profiler->hooks][i])
			bpf_program__set_autoload(wanted[profiler->hooks][i], true);
	profiler->switch_program = wanted[profiler->hooks][0];
}

static struct offcpu_profiler *profiler_of(const struct sampler *sampler)
{
	return (struct offcpu_profiler *)((char *)sampler -
					  offsetof(struct offcpu_profiler, sampler));
}

static struct window_buffers buffers_of(struct offcpu_profiler *profiler)
{
	return WINDOW_BUFFERS_OF(profiler->skel, OFFCPU_STAT__END, profiler->stats_at_window_start);
}

static int start(struct sampler *sampler)
{
	struct offcpu_profiler *profiler = profiler_of(sampler);
	const struct window_buffers buffers = buffers_of(profiler);
	int err = offcpu_bpf__attach(profiler->skel);

	if (err)
		return err;
	window_buffers__start(&buffers);
	/* Blocks under way at start began before kiln: charged from now on only. */
	profiler->skel->bss->window_start_ns = now_ns();
	return 0;
}

/* Runs the task iterator once over every task; it prints nothing. */
static int run_blocked_tasks(struct offcpu_profiler *profiler)
{
	char buffer[64];
	ssize_t bytes;
	int fd, err = 0;

	fd = bpf_iter_create(bpf_link__fd(profiler->skel->links.blocked_tasks));
	if (fd < 0)
		return -errno;
	while ((bytes = read(fd, buffer, sizeof(buffer))) > 0)
		;
	if (bytes < 0)
		err = -errno;
	close(fd);
	return err;
}

static int end_window(struct sampler *sampler, struct sample_window *ret_window)
{
	struct offcpu_profiler *profiler = profiler_of(sampler);
	struct offcpu_bpf *skel = profiler->skel;
	const struct window_buffers buffers = buffers_of(profiler);
	uint64_t end = now_ns();
	int err;

	/* Threads still blocked: their time until `end` goes into this window. */
	__atomic_store_n(&skel->bss->window_end_ns, end, __ATOMIC_RELAXED);
	err = run_blocked_tasks(profiler);
	/* Blocks that began before `end` are charged from there on only. */
	__atomic_store_n(&skel->bss->window_start_ns, end, __ATOMIC_RELAXED);
	if (err)
		return err;
	err = window_buffers__end_window(&buffers, ret_window);
	if (!err)
		ret_window->off_cpu = true;
	return err;
}

static int bpf_run_stats(const struct sampler *sampler, uint64_t *ret_run_time_ns,
			 uint64_t *ret_run_count)
{
	return bpf_program_run_stats(profiler_of(sampler)->switch_program, ret_run_time_ns,
				     ret_run_count);
}

static void profiler_free(struct offcpu_profiler *profiler)
{
	if (!profiler)
		return;
	offcpu_bpf__destroy(profiler->skel);
	free(profiler);
}

static void sampler_free(struct sampler *sampler)
{
	profiler_free(profiler_of(sampler));
}

static const struct sampler_ops offcpu_sampler_ops = {
	.name = "off-CPU",
	.start = start,
	.end_window = end_window,
	.bpf_run_stats = bpf_run_stats,
	.free = sampler_free,
};

struct offcpu_profiler *offcpu_profiler__new(const struct offcpu_profiler_opts *opts)
{
	struct offcpu_profiler *profiler = calloc(1, sizeof(*profiler));
	struct window_buffers buffers;
	struct shared_maps shared;
	struct offcpu_bpf *skel;
	const char *reason;
	int err;

	if (!profiler)
		return NULL;
	profiler->sampler.ops = &offcpu_sampler_ops;
	profiler->sampler.counter_lines = offcpu_counter_lines;
	profiler->sampler.counter_line_count = offcpu_counter_line_count;
	skel = profiler->skel = offcpu_bpf__open();
	if (!skel) {
		err = -errno;
		goto fail;
	}
	skel->rodata->filter_pids = sampling__filters_pids(opts->sampling);
	skel->rodata->dwarf_unwinding = opts->dwarf_unwinding;
	skel->rodata->min_block_ns = opts->min_block_ns;
	skel->rodata->state_mask = opts->state_mask;
	profiler->hooks = opts->hooks >= 0 ? opts->hooks : probe_hooks();
	if (profiler->hooks == OFFCPU_HOOKS_TASK_WORK &&
	    (err = features__probe(FEATURE_TASK_WORK_IN_TRACEPOINT, &reason))) {
		log_error("--off-cpu-hooks task-work: the kernel refuses it: %s", reason);
		err = -EOPNOTSUPP;
		goto fail;
	}
	skel->rodata->hooks = profiler->hooks;
	select_programs(profiler);
	buffers = buffers_of(profiler);
	window_buffers__set_sizes(&buffers, opts->max_stacks, opts->max_sample_keys);
	/* One process table, filter and set of unwind tables for every program. */
	shared = SHARED_MAPS_OF(skel);
	err = sampling__load_program(opts->sampling, skel->skeleton, &shared);
	if (err)
		goto fail;
	return profiler;
fail:
	profiler_free(profiler);
	errno = -err;
	return NULL;
}

struct sampler *offcpu_profiler__sampler(struct offcpu_profiler *profiler)
{
	return &profiler->sampler;
}

int offcpu_profiler__hooks(const struct offcpu_profiler *profiler)
{
	return profiler->hooks;
}
